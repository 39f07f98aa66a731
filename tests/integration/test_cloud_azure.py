"""Azure billing: a Cost Management FocusCost export in Azurite -> cost_data_standard_1_3.

Azurite (Microsoft's storage emulator, from npm) serves the Blob API on a free loopback port;
the processor talks to it with azure-storage-blob exactly as it would to Azure, with the
well-known development account. The fixture export for October 2026 has two runs: an older
one with other numbers, which must be ignored, and the latest one with two gzipped CSV files.
The expected totals are summed here, with Decimal, from the rows written into those files.
"""

from __future__ import annotations

import gzip
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from azure.storage.blob import (
    BlobServiceClient,
    ContainerClient,
    ContainerSasPermissions,
    generate_container_sas,
)

from pipeline_ops_core.errors import TerminalError
from tests.support.azurite import ACCOUNT, ACCOUNT_KEY, azurite_blob, connection_string
from tests.support.cloud import (
    assert_focus_rows_valid,
    assert_run_lineage,
    billed_total,
    count_rows,
    focus_rows,
    money,
    run_pipeline,
)
from tests.support.focus_validator import FAILED, run_validator
from tests.support.genai import FOCUS_DATA, ListLog
from tests.support.servers import Server
from warehouse.duckdb import DuckDBWarehouse

__all__ = ["azurite_blob"]  # the fixture, imported to be used here

PIPELINE = "configs/cloud/azure/cost/billing.yml"
CONTAINER = "costexports"
ROOT_FOLDER = "exports/focus"
EXPORT = "acme-focus-daily"
OCT_START, OCT_END = date(2026, 10, 1), date(2026, 10, 31)
PERIOD = "20261001-20261031"
RESERVATION = "/providers/Microsoft.Capacity/reservationOrders/ro-1/reservations/r-1"
SAVINGS_PLAN = "/providers/Microsoft.BillingBenefits/savingsPlanOrders/spo-1/savingsPlans/sp-1"
SUB = "/subscriptions/00000000-0000-0000-0000-000000000001"

COLUMNS = [
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingAccountType",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "CommitmentDiscountCategory",
    "CommitmentDiscountId",
    "CommitmentDiscountName",
    "CommitmentDiscountStatus",
    "CommitmentDiscountType",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "ListUnitPrice",
    "PricingCategory",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "RegionId",
    "RegionName",
    "ResourceId",
    "ResourceName",
    "ServiceCategory",
    "ServiceName",
    "ServiceSubcategory",
    "SkuId",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    "Tags",
    "x_BilledCostInUsd",
    "x_PublisherType",
    "x_ResourceGroupName",
    "x_SkuMeterCategory",
]


def focus_row(day: int, cost: str, *bases: dict[str, str], **values: str) -> dict[str, str]:
    """One FocusCost 1.2-preview row on 2026-10-<day>; `bases`, then `values` override."""
    start = datetime(2026, 10, day, tzinfo=UTC)
    row = {
        "BilledCost": cost,
        "BillingAccountId": "/providers/Microsoft.Billing/billingAccounts/8611537",
        "BillingAccountName": "Acme EA",
        "BillingAccountType": "Billing Account",
        "BillingCurrency": "USD",
        "BillingPeriodEnd": "2026-11-01T00:00:00Z",
        "BillingPeriodStart": "2026-10-01T00:00:00Z",
        "ChargeCategory": "Usage",
        "ChargeFrequency": "Usage-Based",
        "ChargePeriodEnd": f"{start + timedelta(days=1):%Y-%m-%dT%H:%M:%SZ}",
        "ChargePeriodStart": f"{start:%Y-%m-%dT%H:%M:%SZ}",
        "ConsumedQuantity": "10",
        "ConsumedUnit": "Hours",
        "ContractedCost": cost,
        "EffectiveCost": cost,
        "InvoiceIssuerName": "Microsoft",
        "ListCost": cost,
        "PricingCategory": "Standard",
        "PricingQuantity": "10",
        "PricingUnit": "Hours",
        "ProviderName": "Microsoft",
        "PublisherName": "Microsoft",
        "RegionId": "westeurope",
        "RegionName": "West Europe",
        "SubAccountId": SUB,
        "SubAccountName": "acme-prod",
        "x_BilledCostInUsd": cost,
        "x_PublisherType": "Microsoft",
        "x_ResourceGroupName": "rg-prod",
    }
    for base in bases:
        row.update(base)
    row.update(values)
    return {c: row.get(c, "") for c in COLUMNS}


VM = {
    "ServiceName": "Virtual Machines",
    "ServiceCategory": "Compute",
    "ServiceSubcategory": "Virtual Machines",
    "ChargeDescription": "D2s v5 hours",
    "ResourceId": f"{SUB}/resourceGroups/rg-prod/providers/Microsoft.Compute/virtualMachines/vm1",
    "ResourceName": "vm1",
    "x_SkuMeterCategory": "Virtual Machines",
}
STORAGE = {
    "ServiceName": "Storage Accounts",
    "ServiceCategory": "Storage",
    "ServiceSubcategory": "Object Storage",
    "ChargeDescription": "Hot LRS data stored",
    "ConsumedUnit": "GB/Month",
    "PricingUnit": "GB/Month",
    "x_SkuMeterCategory": "Storage",
}
OPENAI = {
    "ServiceName": "Azure OpenAI Service",
    "ServiceCategory": "AI and Machine Learning",
    "ServiceSubcategory": "Generative AI",
    "ChargeDescription": "gpt-4o input tokens",
    "ConsumedUnit": "1000 Tokens",
    "PricingUnit": "1000 Tokens",
    "x_SkuMeterCategory": "Cognitive Services",
}
RESERVED = {
    **VM,
    "CommitmentDiscountCategory": "Usage",
    "CommitmentDiscountId": RESERVATION,
    "CommitmentDiscountName": "vm-reservation-1y",
    "CommitmentDiscountType": "Reservation",
    "PricingCategory": "Committed",
}

# The latest run: two files, every kind of charge the SQL maps.
PART_1 = [
    focus_row(1, "12.34", VM),
    focus_row(1, "3.215", STORAGE),
    focus_row(2, "0", RESERVED, CommitmentDiscountStatus="Used", EffectiveCost="4.50"),
    focus_row(2, "0", RESERVED, CommitmentDiscountStatus="Unused", EffectiveCost="1.25"),
    focus_row(15, "0.987654", OPENAI),
]
PART_2 = [
    focus_row(
        2,
        "100.00",
        RESERVED,
        ChargeCategory="Purchase",
        ChargeFrequency="One-Time",
        ChargeDescription="Reservation purchase",
        EffectiveCost="0",
        PricingCategory="Standard",
        PricingUnit="Units",
    ),
    focus_row(
        15,
        "0",
        VM,
        CommitmentDiscountCategory="Spend",
        CommitmentDiscountId=SAVINGS_PLAN,
        CommitmentDiscountName="compute-savings-plan",
        CommitmentDiscountType="Savings Plan",
        CommitmentDiscountStatus="Used",
        PricingCategory="Committed",
        EffectiveCost="2.10",
        ChargeDescription="D4s v5 hours under the savings plan",
    ),
    # EA Marketplace purchase: Azure leaves ServiceName empty (a documented gap).
    focus_row(
        15,
        "49.99",
        ChargeCategory="Purchase",
        ChargeFrequency="Recurring",
        ChargeDescription="Contoso Firewall monthly plan",
        PublisherName="Contoso Ltd",
        ServiceCategory="Security",
        x_PublisherType="Marketplace",
    ),
    focus_row(
        15,
        "-5.00",
        ChargeCategory="Credit",
        ChargeFrequency="One-Time",
        ChargeDescription="Azure credit",
        ServiceName="Azure Credits",
        ServiceCategory="Other",
    ),
    focus_row(
        31,
        "7.77",
        ChargeCategory="Tax",
        ChargeFrequency="One-Time",
        ChargeDescription="VAT",
        ServiceName="Tax",
        ServiceCategory="",  # no category on tax rows -> 'Other'
    ),
]
# An older run of the same month, superseded by the latest: different numbers.
OLD_RUN = [focus_row(1, "999.99", VM), focus_row(15, "500.00", OPENAI)]
LATEST_ROWS = PART_1 + PART_2


def total(rows: list[dict[str, str]], column: str = "BilledCost") -> Decimal:
    return money(sum(Decimal(r[column] or "0") for r in rows))


def csv_gz(rows: list[dict[str, str]], *, fraction: bool = False) -> bytes:
    out = io.StringIO()
    out.write("\ufeff")  # Azure writes a UTF-8 BOM
    out.write(",".join(COLUMNS) + "\n")
    for row in rows:
        values = []
        for column in COLUMNS:
            value = row[column]
            if fraction and value.endswith("T00:00:00Z"):
                value = value.replace("Z", ".0000000Z")  # Azure's 7-digit form
            values.append(f'"{value}"' if "," in value else value)
        out.write(",".join(values) + "\n")
    return gzip.compress(out.getvalue().encode("utf-8"))


@dataclass
class Run:
    run_id: str
    submitted: str
    files: dict[str, bytes]  # part file name -> bytes
    rows: dict[str, int]
    export_type: str = "FocusCost"
    data_version: str = "1.2-preview"
    file_format: str = "Csv"


def manifest(export: str, run: Run, blob_names: list[str]) -> bytes:
    blobs = [
        {"blobName": name, "byteCount": len(data), "dataRowCount": run.rows[part]}
        for name, (part, data) in zip(blob_names, run.files.items(), strict=True)
    ]
    doc = {
        "manifestVersion": "2024-04-01",
        "byteCount": sum(b["byteCount"] for b in blobs),
        "blobCount": len(blobs),
        "dataRowCount": sum(b["dataRowCount"] for b in blobs),
        "exportConfig": {
            "exportName": export,
            "resourceId": "/providers/Microsoft.Billing/billingAccounts/8611537/providers/"
            f"Microsoft.CostManagement/exports/{export}",
            "dataVersion": run.data_version,
            "apiVersion": "2023-07-01-preview",
            "type": run.export_type,
            "timeFrame": "MonthToDate",
            "granularity": "Daily",
        },
        "deliveryConfig": {
            "partitionData": True,
            "dataOverwriteBehavior": "CreateNewReport",
            "fileFormat": run.file_format,
            "compressionMode": "gzip" if run.file_format == "Csv" else "snappy",
            "containerUri": f"{SUB}/resourceGroups/rg/providers/Microsoft.Storage/"
            "storageAccounts/acmebilling",
            "rootFolderPath": ROOT_FOLDER,
        },
        "blobs": blobs,
        "runInfo": {
            "executionType": "Scheduled",
            "submittedTime": run.submitted,
            "runId": run.run_id,
            "startDate": "2026-10-01T00:00:00",
            "endDate": "2026-10-31T00:00:00",
        },
    }
    return json.dumps(doc, indent=2).encode()


def upload_run(
    container: ContainerClient, export: str, run: Run, *, with_manifest: bool = True
) -> list[str]:
    folder = f"{ROOT_FOLDER}/{export}/{PERIOD}/{run.run_id}"
    names = [f"{folder}/{part}" for part in run.files]
    for name, data in zip(names, run.files.values(), strict=True):
        container.upload_blob(name, data, overwrite=True)
    if with_manifest:
        container.upload_blob(
            f"{folder}/manifest.json", manifest(export, run, names), overwrite=True
        )
    return names


@dataclass
class Seeded:
    server: Server
    latest_files: list[str]
    old_files: list[str]

    def credential(self, **extra: Any) -> dict[str, Any]:
        return {
            "connection_string": connection_string(self.server),
            "container": CONTAINER,
            "root_folder": ROOT_FOLDER,
            "export_name": EXPORT,
            **extra,
        }

    def sas(self, **permissions: bool) -> str:
        return generate_container_sas(
            ACCOUNT,
            CONTAINER,
            account_key=ACCOUNT_KEY,
            permission=ContainerSasPermissions(**permissions),
            expiry=datetime.now(UTC) + timedelta(hours=2),
        )


@pytest.fixture(scope="module")
def seeded(azurite_blob: Server) -> Iterator[Seeded]:
    service = BlobServiceClient.from_connection_string(connection_string(azurite_blob))
    container = service.get_container_client(CONTAINER)
    if container.exists():
        container.delete_container()
    container.create_container()
    old = Run(
        "run-old", "2026-10-20T06:12:33.1234567Z", {"part_0_0001.csv.gz": csv_gz(OLD_RUN)}, {}
    )
    old.rows = {"part_0_0001.csv.gz": len(OLD_RUN)}
    latest = Run(
        "run-latest",
        "2026-11-03T05:59:01.9013967Z",
        {"part_0_0001.csv.gz": csv_gz(PART_1), "part_0_0002.csv.gz": csv_gz(PART_2, fraction=True)},
        {"part_0_0001.csv.gz": len(PART_1), "part_0_0002.csv.gz": len(PART_2)},
    )
    # Written in this order on purpose: the latest run is not the last one listed by name.
    latest_files = upload_run(container, EXPORT, latest)
    old_files = upload_run(container, EXPORT, old)

    # Bad inputs, each its own export folder in the same container.
    one = {"part_0_0001.csv.gz": csv_gz(PART_1)}
    upload_run(
        container, "no-manifest", Run("r1", "2026-11-02T00:00:00Z", one, {}), with_manifest=False
    )
    actual = Run("r1", "2026-11-02T00:00:00Z", one, {"part_0_0001.csv.gz": len(PART_1)})
    actual.export_type = "ActualCost"
    upload_run(container, "actual-cost", actual)
    junk = os.urandom(2048)
    corrupt = Run("r1", "2026-11-02T00:00:00Z", {"part_0_0001.parquet": junk}, {})
    corrupt.rows, corrupt.file_format = {"part_0_0001.parquet": 10}, "Parquet"
    upload_run(container, "corrupt-parquet", corrupt)
    yield Seeded(azurite_blob, latest_files, old_files)
    container.delete_container()


@pytest.fixture
def wh(tmp_path: Path) -> DuckDBWarehouse:
    return DuckDBWarehouse(tmp_path / "w.duckdb")


def run_october(wh: DuckDBWarehouse, credential: dict[str, Any], **kw: Any) -> dict[str, Any]:
    kw.setdefault("start", OCT_START)
    kw.setdefault("end", OCT_END)
    return run_pipeline(wh, PIPELINE, credential=credential, **kw)


def raw_rows(wh: DuckDBWarehouse, org: str = "acme") -> list[dict[str, Any]]:
    return wh.query(f"SELECT * FROM `{org}_dev.azure_focus_export_raw`").to_pylist()


# -- the happy path -------------------------------------------------------------------------


def test_october_export_totals_match_the_latest_run_to_the_cent(
    seeded: Seeded, wh: DuckDBWarehouse
) -> None:
    log = ListLog()
    results = run_october(wh, seeded.credential(), log=log)

    rows = focus_rows(wh, "acme", "azure")
    assert len(rows) == len(LATEST_ROWS)
    assert billed_total(rows) == total(LATEST_ROWS) == Decimal("169.30")
    assert money(sum(Decimal(str(r["EffectiveCost"])) for r in rows)) == total(
        LATEST_ROWS, "EffectiveCost"
    )
    assert_focus_rows_valid(rows)
    assert results["extract"].metrics["files"] == 2
    assert money(results["extract"].metrics["billed_cost"]) == total(LATEST_ROWS)
    assert results["unify"].rows_written == len(LATEST_ROWS)

    # Only the latest run's files were read; the older run's numbers appear nowhere.
    raw = raw_rows(wh)
    assert {r["x_source_file"] for r in raw} == {f"{CONTAINER}/{n}" for n in seeded.latest_files}
    assert not any(r["BilledCost"] in (999.99, 500.0) for r in rows)
    assert any("1 older run(s) superseded" in line for _, line in log.lines)
    assert {r["charge_date"] for r in raw} == {date(2026, 10, d) for d in (1, 2, 15, 31)}

    assert_run_lineage(rows, "cloud_azure_billing")
    for row in rows:
        assert row["x_provider"] == "azure" and row["x_source"] == "azure_focus_cost_export"
        assert row["HostProviderName"] == row["ServiceProviderName"] == "Microsoft"
        assert row["InvoiceIssuerName"] == "Microsoft"


def test_charges_map_to_focus_1_3(seeded: Seeded, wh: DuckDBWarehouse) -> None:
    run_october(wh, seeded.credential())
    rows = focus_rows(wh, "acme", "azure")
    by_description: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_description.setdefault(row["ChargeDescription"], []).append(row)

    assert {r["ChargeCategory"] for r in rows} == {"Usage", "Purchase", "Credit", "Tax"}
    assert {r["ServiceName"] for r in rows} >= {"Virtual Machines", "Storage Accounts"}

    reserved = {r["CommitmentDiscountStatus"]: r for r in by_description["D2s v5 hours"]}
    assert set(reserved) == {None, "Used", "Unused"}  # on-demand, covered, unused
    for status in ("Used", "Unused"):
        row = reserved[status]
        assert row["CommitmentDiscountId"] == RESERVATION
        assert row["CommitmentDiscountCategory"] == "Usage"
        assert row["CommitmentDiscountType"] == "Reservation"
        assert row["PricingCategory"] == "Committed"
    assert reserved["Unused"]["EffectiveCost"] == 1.25 and reserved["Unused"]["BilledCost"] == 0

    [purchase] = by_description["Reservation purchase"]
    assert (purchase["ChargeCategory"], purchase["ChargeFrequency"]) == ("Purchase", "One-Time")
    assert purchase["CommitmentDiscountStatus"] is None  # status is for Usage rows only

    savings = next(r for r in rows if r["CommitmentDiscountId"] == SAVINGS_PLAN)
    assert savings["CommitmentDiscountCategory"] == "Spend"
    assert savings["CommitmentDiscountType"] == "Savings Plan"
    assert savings["CommitmentDiscountStatus"] == "Used"

    [marketplace] = by_description["Contoso Firewall monthly plan"]
    assert marketplace["ServiceName"] == "Contoso Ltd"  # empty ServiceName -> PublisherName
    assert marketplace["PublisherName"] == "Contoso Ltd"
    assert marketplace["ServiceCategory"] == "Security"
    assert marketplace["ServiceSubcategory"] == "Other (Security)"

    [tax] = by_description["VAT"]
    assert (tax["ChargeCategory"], tax["BilledCost"]) == ("Tax", 7.77)
    assert (tax["ServiceCategory"], tax["ServiceSubcategory"]) == ("Other", "Other (Other)")
    assert tax["PricingQuantity"] is None and tax["PricingUnit"] is None  # FOCUS: MUST on Tax
    [credit] = by_description["Azure credit"]
    assert (credit["ChargeCategory"], credit["BilledCost"]) == ("Credit", -5.0)

    [openai] = by_description["gpt-4o input tokens"]
    assert openai["ServiceCategory"] == "AI and Machine Learning"
    assert openai["ServiceSubcategory"] == "Generative AI"

    # Microsoft's own columns are kept with the raw row, not dropped.
    extensions = [json.loads(r["x_extensions"]) for r in raw_rows(wh)]
    assert all(e["x_ResourceGroupName"] == "rg-prod" for e in extensions)
    assert {e["x_PublisherType"] for e in extensions} == {"Microsoft", "Marketplace"}


def test_focus_rows_pass_the_official_validator(
    seeded: Seeded, wh: DuckDBWarehouse, tmp_path: Path
) -> None:
    run_october(wh, seeded.credential())
    parquet = tmp_path / "azure_focus.parquet"
    pq.write_table(wh.query("SELECT * FROM `acme_dev.cost_data_standard_1_3`"), parquet)
    workdir = tmp_path / "validator"
    workdir.mkdir()
    output = run_validator(parquet, workdir)
    quirks = set((FOCUS_DATA / "known_model_quirks.txt").read_text().split())
    failures = {rule for rule, _ in FAILED.findall(output)}
    assert "Total: " in output and failures <= quirks, failures - quirks


def test_rerun_adds_nothing_and_a_one_day_rerun_touches_only_that_day(
    seeded: Seeded, wh: DuckDBWarehouse
) -> None:
    run_october(wh, seeded.credential())
    run_october(wh, seeded.credential(), org="globex", run_id="globex-1")
    first = focus_rows(wh, "acme", "azure")

    run_october(wh, seeded.credential(), run_id="run-2")
    again = focus_rows(wh, "acme", "azure")
    assert len(again) == len(first) and billed_total(again) == billed_total(first)
    assert count_rows(wh, "acme", "azure_focus_export_raw") == len(LATEST_ROWS)
    assert {r["x_run_id"] for r in again} == {"run-2"}

    day = date(2026, 10, 15)
    run_october(wh, seeded.credential(), start=day, end=day, run_id="run-3")
    after = focus_rows(wh, "acme", "azure")
    assert len(after) == len(first) and billed_total(after) == total(LATEST_ROWS)
    assert {r["x_run_id"] for r in after if r["x_pipeline_run_date"] == day} == {"run-3"}
    assert {r["x_run_id"] for r in after if r["x_pipeline_run_date"] != day} == {"run-2"}
    globex = focus_rows(wh, "globex", "azure")
    assert len(globex) == len(LATEST_ROWS) and {r["x_run_id"] for r in globex} == {"globex-1"}


@pytest.mark.parametrize("form", ["account_key", "account_key_with_name", "sas_token"])
def test_account_url_credentials(seeded: Seeded, wh: DuckDBWarehouse, form: str) -> None:
    base = {"account_url": seeded.server.url}
    if form == "sas_token":
        secret = {"sas_token": "?" + seeded.sas(read=True, list=True)}
    else:
        secret = {"account_key": ACCOUNT_KEY}
        if form == "account_key_with_name":
            secret["account_name"] = ACCOUNT
    credential = {**base, **secret}
    config_from_credential = {"container": CONTAINER, "root_folder": ROOT_FOLDER}
    run_october(wh, {**credential, **config_from_credential, "export_name": EXPORT})
    assert billed_total(focus_rows(wh, "acme", "azure")) == total(LATEST_ROWS)


# -- bad input: a clear TerminalError and nothing written -------------------------------------


def fail_october(wh: DuckDBWarehouse, credential: dict[str, Any], **kw: Any) -> str:
    log = ListLog()
    with pytest.raises(TerminalError) as caught:
        run_october(wh, credential, log=log, **kw)
    assert count_rows(wh, "acme", "azure_focus_export_raw") == 0
    assert focus_rows(wh, "acme", "azure") == []
    message = str(caught.value)
    for secret in _secrets(credential):
        assert secret not in message
        assert not any(secret in line for _, line in log.lines)
    return message


def _secrets(credential: dict[str, Any]) -> list[str]:
    found = []
    for name in ("connection_string", "account_key", "sas_token"):
        if credential.get(name):
            found.append(credential[name])
    for value in list(found):
        found += [p.split("=", 1)[1] for p in value.split(";") if p.startswith("AccountKey=")]
        found += [p.split("=", 1)[1] for p in value.lstrip("?").split("&") if p.startswith("sig=")]
    return found


def test_wrong_container(seeded: Seeded, wh: DuckDBWarehouse) -> None:
    message = fail_october(wh, seeded.credential(container="no-such-container"))
    assert (
        message
        == "container 'no-such-container' does not exist in storage account 'devstoreaccount1'"
    )


def test_missing_manifest(seeded: Seeded, wh: DuckDBWarehouse) -> None:
    message = fail_october(wh, seeded.credential(export_name="no-manifest"))
    assert message.startswith(
        f"no manifest.json for 2026-10 under '{CONTAINER}/{ROOT_FOLDER}/no-manifest/{PERIOD}/'"
    )
    assert "no completed run" in message


def test_no_export_for_the_period(seeded: Seeded, wh: DuckDBWarehouse) -> None:
    nov = date(2026, 11, 3)
    message = fail_october(wh, seeded.credential(), start=nov, end=nov)
    assert message.startswith(f"no export for 2026-11 under '{CONTAINER}/{ROOT_FOLDER}/{EXPORT}/'")
    assert "20261101-20261130" in message


def test_corrupt_parquet_file(seeded: Seeded, wh: DuckDBWarehouse) -> None:
    message = fail_october(wh, seeded.credential(export_name="corrupt-parquet"))
    name = f"{CONTAINER}/{ROOT_FOLDER}/corrupt-parquet/{PERIOD}/r1/part_0_0001.parquet"
    assert message.startswith(f"{name}: not a readable Parquet file (")


def test_actual_cost_export_is_refused(seeded: Seeded, wh: DuckDBWarehouse) -> None:
    message = fail_october(wh, seeded.credential(export_name="actual-cost"))
    path = f"{CONTAINER}/{ROOT_FOLDER}/actual-cost/{PERIOD}/r1/manifest.json"
    assert message.startswith(f"manifest '{path}' is a ActualCost export; only FocusCost")


def test_wrong_account_key_is_access_denied(seeded: Seeded, wh: DuckDBWarehouse) -> None:
    wrong = "QUJD" + ACCOUNT_KEY[4:]
    credential = seeded.credential(connection_string=connection_string(seeded.server, wrong))
    message = fail_october(wh, credential)
    assert message.startswith(
        f"access denied reading '{CONTAINER}/{ROOT_FOLDER}/{EXPORT}/' in storage account "
        "'devstoreaccount1' (AuthorizationFailure): the account key or SAS token was rejected"
    )
    assert wrong not in message and ACCOUNT_KEY not in message

    by_url = {"account_url": seeded.server.url, "account_key": wrong}
    message = fail_october(wh, {**seeded.credential(), "connection_string": None, **by_url})
    assert message.startswith("access denied reading")


def test_sas_without_read_permission_is_access_denied(seeded: Seeded, wh: DuckDBWarehouse) -> None:
    sas = seeded.sas(list=True)  # may list the export, may not read a blob
    credential = {**seeded.credential(), "connection_string": None}
    credential |= {"account_url": seeded.server.url, "sas_token": sas}
    message = fail_october(wh, credential)
    manifest_path = f"{CONTAINER}/{seeded.latest_files[0].rsplit('/', 1)[0]}/manifest.json"
    assert message.startswith(
        f"access denied reading '{manifest_path}' in storage account 'devstoreaccount1' "
        "(AuthorizationPermissionMismatch): the credential needs Read and List permission"
    )
    assert sas not in message


def test_focus_1_0_parquet_export(seeded: Seeded, wh: DuckDBWarehouse) -> None:
    """A FOCUS 1.0 dataset in Parquet: 1.0 names and values map to 1.3 ones."""
    rows = [
        focus_row(3, "10.50", VM, PricingCategory="On-Demand"),
        focus_row(4, "0", RESERVED, CommitmentDiscountStatus="Used", EffectiveCost="3.00"),
    ]
    for row in rows:
        row.pop("ServiceSubcategory")  # not in 1.0
        row["PricingCategory"] = row["PricingCategory"].replace("Committed", "Commitment-Based")
    # Parquet is typed: numbers as doubles, empty values as nulls.
    numeric = ("Cost", "Quantity", "Price", "x_BilledCostInUsd")
    typed = [
        {k: None if v == "" else float(v) if k.endswith(numeric) else v for k, v in row.items()}
        for row in rows
    ]
    table = pa.Table.from_pylist(typed)
    sink = io.BytesIO()
    pq.write_table(table, sink)
    container = BlobServiceClient.from_connection_string(
        connection_string(seeded.server)
    ).get_container_client(CONTAINER)
    run = Run("r1", "2026-11-01T00:00:00Z", {"part_0_0001.parquet": sink.getvalue()}, {})
    run.rows, run.data_version, run.file_format = {"part_0_0001.parquet": 2}, "1.0", "Parquet"
    upload_run(container, "focus-1-0", run)

    run_october(wh, seeded.credential(export_name="focus-1-0"))
    got = sorted(focus_rows(wh, "acme", "azure"), key=lambda r: r["ChargePeriodStart"])
    assert_focus_rows_valid(got)
    assert billed_total(got) == Decimal("10.50")
    assert [r["PricingCategory"] for r in got] == ["Standard", "Committed"]
    assert [r["ServiceSubcategory"] for r in got] == ["Other (Compute)", "Other (Compute)"]
    assert got[1]["CommitmentDiscountType"] == "Reservation"
