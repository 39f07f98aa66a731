"""AWS billing: a FOCUS 1.2 Data Export in moto's S3 (server mode, IAM enforced) -> FOCUS 1.3.

The fixture export for billing period 2026-10 is two Parquet files listed by the period's
manifest (one by s3:// URI, one by key, both in a "create new report" execution folder), with
on-demand usage, Savings Plan and Reserved Instance rows, a Tax and a Credit row over three
days and three services; plus a stale file of an older delivery the manifest no longer lists.
The expected totals are summed here, with Decimal, from the rows the test wrote.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline_ops_core.errors import TerminalError, TransientError
from tests.support.cloud import (
    assert_focus_rows_valid,
    assert_run_lineage,
    billed_total,
    count_rows,
    focus_rows,
    money,
    run_pipeline,
)
from tests.support.genai import ListLog
from tests.support.moto_server import MotoAws, moto_aws, s3_statements  # noqa: F401 - fixture
from tests.support.servers import free_port
from warehouse.duckdb import DuckDBWarehouse
from warehouse.schemas.focus import FOCUS_1_3_COLUMNS

PIPELINE = "configs/cloud/aws/cost/billing.yml"
BUCKET, PREFIX, EXPORT = "acme-billing", "cur", "focus12"
ROOT = f"{PREFIX}/{EXPORT}"
PERIOD = f"{ROOT}/data/BILLING_PERIOD=2026-10"
RUN_FOLDER = f"{PERIOD}/20261104T031522Z-5f1c8a2e"  # "create new report" execution folder
FILE_1 = f"{RUN_FOLDER}/{EXPORT}-00001.snappy.parquet"
FILE_2 = f"{RUN_FOLDER}/{EXPORT}-00002.snappy.parquet"
STALE = f"{PERIOD}/20261101T020000Z-11aa22bb/{EXPORT}-00001.snappy.parquet"
MANIFEST = f"{ROOT}/metadata/BILLING_PERIOD=2026-10/{EXPORT}-Manifest.json"
OCT_START, OCT_END = date(2026, 10, 1), date(2026, 10, 31)

# FOCUS 1.2 = the 65 FOCUS 1.3 columns less the eight 1.3 added.
NEW_IN_1_3 = {
    "AllocatedMethodDetails",
    "AllocatedMethodId",
    "AllocatedResourceId",
    "AllocatedResourceName",
    "AllocatedTags",
    "ContractApplied",
    "HostProviderName",
    "ServiceProviderName",
}
_ARROW = {"Decimal": pa.float64(), "Date/Time": pa.timestamp("ms"), "String": pa.string()}
FOCUS_1_2_AWS = pa.schema(
    [
        (
            name,
            pa.map_(pa.string(), pa.string()) if name == "Tags" else _ARROW.get(kind, pa.string()),
        )
        for name, kind in FOCUS_1_3_COLUMNS
        if name not in NEW_IN_1_3
    ]
    + [
        ("x_Discounts", pa.map_(pa.string(), pa.float64())),
        ("x_Operation", pa.string()),
        ("x_ServiceCode", pa.string()),
        ("x_UsageType", pa.string()),
    ]
)
assert len(FOCUS_1_2_AWS) == 57 + 4

SP_ARN = "arn:aws:savingsplans::111122223333:savingsplan/3f1e9c2a-4b5d-4e6f-8a7b-9c0d1e2f3a4b"
RI_ARN = "arn:aws:rds:us-east-1:111122223333:ri:acme-pg-ri-1"
EC2 = ("Amazon Elastic Compute Cloud", "AmazonEC2", "Compute", "Virtual Machines")
S3 = ("Amazon Simple Storage Service", "AmazonS3", "Storage", "Object Storage")
RDS = ("Amazon Relational Database Service", "AmazonRDS", "Databases", "Relational Databases")


def charge(
    day: int,
    service: tuple[str, str, str, str],
    category: str,
    billed: str,
    effective: str,
    listed: str,
    *,
    description: str,
    frequency: str = "Usage-Based",
    quantity: float | None = 1.0,
    unit: str | None = "Hrs",
    hours: int = 24,
    **extra: Any,
) -> dict[str, Any]:
    name, code, service_category, subcategory = service
    start = datetime(2026, 10, day)
    end = datetime(2026, 10, day, hours - 1, 59) if hours < 24 else datetime(2026, 10, day + 1)
    return {
        "BilledCost": Decimal(billed),
        "EffectiveCost": Decimal(effective),
        "ListCost": Decimal(listed),
        "ContractedCost": Decimal(billed if category != "Usage" else listed),
        "BillingAccountId": "111122223333",
        "BillingAccountName": "acme-payer",
        "BillingAccountType": None,
        "BillingCurrency": "USD",
        "BillingPeriodStart": datetime(2026, 10, 1),
        "BillingPeriodEnd": datetime(2026, 11, 1),
        "ChargeCategory": category,
        "ChargeDescription": description,
        "ChargeFrequency": frequency,
        "ChargePeriodStart": start,
        "ChargePeriodEnd": end,
        "ConsumedQuantity": quantity,
        "ConsumedUnit": unit,
        "InvoiceIssuerName": "Amazon Web Services, Inc.",
        "PricingCategory": "Standard",
        "PricingCurrency": "USD",
        "PricingQuantity": quantity,
        "PricingUnit": unit,
        "ProviderName": "AWS",
        "PublisherName": "Amazon Web Services, Inc.",
        "RegionId": "us-east-1",
        "RegionName": "US East (N. Virginia)",
        "ServiceCategory": service_category,
        "ServiceName": name,
        "ServiceSubcategory": subcategory,
        "SubAccountId": "444455556666",
        "SubAccountName": "acme-prod",
        "x_ServiceCode": code,
        **extra,
    }


SP = {
    "CommitmentDiscountCategory": "Spend",
    "CommitmentDiscountId": SP_ARN,
    "CommitmentDiscountName": "Compute Savings Plan 1yr",
    "CommitmentDiscountType": "Savings Plan",
}
RI = {
    "CommitmentDiscountCategory": "Usage",
    "CommitmentDiscountId": RI_ARN,
    "CommitmentDiscountName": "acme-pg-ri-1",
    "CommitmentDiscountType": "Reserved Instance",
}

DAY_3 = [
    charge(3, EC2, "Usage", "1.9584", "1.9584", "1.9584", description="m7g.large on demand",
           quantity=24.0, ListUnitPrice=0.0816, ContractedUnitPrice=0.0816,
           ResourceId="i-0abc123def4567890", ResourceType="Instance", SkuId="8QFDGSSEHSKSDAM7",
           x_UsageType="BoxUsage:m7g.large", x_Operation="RunInstances",
           Tags=[("team", "search")]),
    charge(3, EC2, "Usage", "0", "1.1424", "1.632", description="m7g.xlarge covered by SP",
           quantity=10.0, hours=10, PricingCategory="Committed", CommitmentDiscountStatus="Used",
           CommitmentDiscountQuantity=1.1424, CommitmentDiscountUnit="USD",
           x_UsageType="BoxUsage:m7g.xlarge", x_Operation="RunInstances",
           x_Discounts=[("SavingsPlan", -0.4896)], **SP),
    charge(3, EC2, "Purchase", "2.40", "0", "2.40", description="Savings Plan recurring fee",
           frequency="Recurring", quantity=24.0, **SP),
    charge(3, EC2, "Usage", "0", "1.2576", "0", description="Savings Plan unused commitment",
           quantity=1.2576, unit="USD", CommitmentDiscountStatus="Unused",
           CommitmentDiscountQuantity=1.2576, CommitmentDiscountUnit="USD", **SP),
    # An AWS conformance gap: no list or contracted unit price, no issuer, no publisher.
    charge(3, S3, "Usage", "0.0371", "0.0371", "0.0371", description="Standard storage",
           quantity=1.6129, unit="GB-Mo", ListUnitPrice=None, InvoiceIssuerName=None,
           PublisherName=None, x_UsageType="TimedStorage-ByteHrs", x_Operation="StandardStorage"),
]  # fmt: skip
DAY_4 = [
    charge(4, RDS, "Usage", "0", "1.656", "2.208", description="db.r6g.large covered by RI",
           quantity=24.0, PricingCategory="Committed", CommitmentDiscountStatus="Used",
           CommitmentDiscountQuantity=24.0, CommitmentDiscountUnit="Hours",
           SkuId="GTZXQ4F9WS9JZT4B", SkuPriceId="GTZXQ4F9WS9JZT4B.6YS6EN2CT7",
           ListUnitPrice=0.092, ContractedUnitPrice=0.092,
           x_UsageType="InstanceUsage:db.r6g.large", **RI),
    charge(4, RDS, "Purchase", "1.656", "0", "1.656", description="RI recurring fee",
           frequency="Recurring", quantity=24.0, **RI),
    charge(4, EC2, "Usage", "1.9584", "1.9584", "1.9584", description="m7g.large on demand",
           quantity=24.0, ListUnitPrice=0.0816, x_UsageType="BoxUsage:m7g.large"),
    # FOCUS: Tax rows carry no pricing quantity or unit; Credit rows may not.
    charge(1, EC2, "Tax", "0.62", "0.62", "0.62", description="Tax for October",
           frequency="One-Time", quantity=None, unit=None, PricingCategory=None),
    charge(4, EC2, "Credit", "-5.00", "-5.00", "0", description="AWS Activate credit",
           frequency="One-Time", quantity=None, unit=None, PricingCategory=None),
]  # fmt: skip
ROWS = DAY_3 + DAY_4
# The older delivery's chunk: if it were read, the totals would be off by 999.99.
STALE_ROWS = [charge(3, EC2, "Usage", "999.99", "999.99", "999.99", description="stale")]


def parquet(rows: list[dict[str, Any]], tz: str | None = None) -> bytes:
    def value(v: Any) -> Any:
        return float(v) if isinstance(v, Decimal) else v

    schema = FOCUS_1_2_AWS
    if tz:  # one file with UTC-marked timestamps, one without: AWS's are UTC either way
        schema = pa.schema(
            [pa.field(f.name, pa.timestamp("ms", tz)) if f.type == pa.timestamp("ms") else f
             for f in schema]
        )  # fmt: skip
    columns = {f.name: [value(r.get(f.name)) for r in rows] for f in schema}
    out = io.BytesIO()
    pq.write_table(pa.table(columns, schema=schema), out, compression="snappy")
    return out.getvalue()


def manifest(*data_files: str, bucket: str = BUCKET) -> bytes:
    return json.dumps(
        {
            "version": "1.0",
            "exportArn": f"arn:aws:bcm-data-exports:us-east-1:111122223333:export/{EXPORT}",
            "exportName": EXPORT,
            "billingPeriod": "2026-10",
            "executionId": "5f1c8a2e",
            "bucket": bucket,
            "dataFiles": list(data_files),
        }
    ).encode()


@dataclass
class Export:
    aws: MotoAws
    reader: dict[str, str]

    def credential(self, **changes: Any) -> dict[str, Any]:
        cred: dict[str, Any] = {
            **self.reader,
            "region": "us-east-1",
            "endpoint_url": self.aws.url,
            "bucket": BUCKET,
            "prefix": PREFIX,
            "export_name": EXPORT,
        }
        cred.update(changes)
        return {k: v for k, v in cred.items() if v is not None}

    def put(self, key: str, body: bytes) -> None:
        self.aws.client("s3").put_object(Bucket=BUCKET, Key=key, Body=body)


@pytest.fixture(scope="module")
def export(moto_aws: MotoAws) -> Iterator[Export]:  # noqa: F811 - the imported fixture
    s3 = moto_aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.create_bucket(Bucket="someone-elses-bucket")
    ex = Export(moto_aws, moto_aws.users["reader"])
    ex.put(FILE_1, parquet(DAY_3))
    ex.put(FILE_2, parquet(DAY_4, tz="UTC"))
    ex.put(STALE, parquet(STALE_ROWS))
    # One entry as an s3:// URI, one as a bucket-relative key: both forms are accepted.
    ex.put(MANIFEST, manifest(f"s3://{BUCKET}/{FILE_1}", FILE_2))
    yield ex


@pytest.fixture
def warehouse(tmp_path: Path) -> DuckDBWarehouse:
    return DuckDBWarehouse(tmp_path / "w.duckdb")


def total(column: str, rows: list[dict[str, Any]] = ROWS) -> Decimal:
    return money(sum((r[column] for r in rows), Decimal(0)))


def run(wh: DuckDBWarehouse, export: Export, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("start", OCT_START)
    kwargs.setdefault("end", OCT_END)
    kwargs.setdefault("credential", export.credential())
    return run_pipeline(wh, PIPELINE, **kwargs)


def test_the_manifests_files_load_and_match_the_export_total(
    export: Export, warehouse: DuckDBWarehouse
) -> None:
    log = ListLog()
    results = run(warehouse, export, log=log)
    assert results["extract"].metrics["files"] == 2
    assert results["extract"].rows_written == len(ROWS)
    assert results["unify"].rows_written == len(ROWS)

    raw = warehouse.query(
        "SELECT x_source_file, x_extensions FROM `acme_dev.aws_focus_export_raw`"
    ).to_pylist()
    assert {r["x_source_file"] for r in raw} == {FILE_1, FILE_2}  # never the stale file
    extensions = [json.loads(r["x_extensions"]) for r in raw]
    s3_ext = {"x_ServiceCode": "AmazonS3", "x_UsageType": "TimedStorage-ByteHrs"}
    assert {**s3_ext, "x_Operation": "StandardStorage"} in extensions
    assert {"SavingsPlan": -0.4896} in [e.get("x_Discounts") for e in extensions]
    assert any(f"manifest s3://{BUCKET}/{MANIFEST}: 2 data file(s)" in m for _, m in log.lines)

    rows = focus_rows(warehouse, "acme", "aws")
    assert len(rows) == len(ROWS)
    assert billed_total(rows) == total("BilledCost") == Decimal("3.63")
    assert money(sum(Decimal(str(r["EffectiveCost"])) for r in rows)) == total("EffectiveCost")
    assert_focus_rows_valid(rows)
    assert_run_lineage(rows, "cloud_aws_billing")
    for row in rows:
        assert (row["x_provider"], row["x_source"]) == ("aws", "aws_focus_1_2_export")
        assert row["HostProviderName"] == row["ServiceProviderName"] == "AWS"
    assert {r["ServiceName"] for r in rows} == {EC2[0], S3[0], RDS[0]}
    assert {r["x_pipeline_run_date"] for r in rows} == {date(2026, 10, d) for d in (1, 3, 4)}
    by = {r["ChargeDescription"]: r for r in rows}
    sp = by["m7g.xlarge covered by SP"]
    assert (sp["CommitmentDiscountCategory"], sp["CommitmentDiscountType"]) == (
        "Spend",
        "Savings Plan",
    )
    assert (sp["CommitmentDiscountStatus"], sp["CommitmentDiscountId"]) == ("Used", SP_ARN)
    assert (sp["BilledCost"], sp["EffectiveCost"]) == (0.0, 1.1424)
    assert by["Savings Plan unused commitment"]["CommitmentDiscountStatus"] == "Unused"
    ri = by["db.r6g.large covered by RI"]
    assert (ri["CommitmentDiscountCategory"], ri["CommitmentDiscountType"]) == (
        "Usage",
        "Reserved Instance",
    )
    assert (ri["CommitmentDiscountQuantity"], ri["CommitmentDiscountUnit"]) == (24.0, "Hours")
    assert by["RI recurring fee"]["ChargeCategory"] == "Purchase"
    assert by["Tax for October"]["ChargeCategory"] == "Tax"
    assert by["AWS Activate credit"]["ChargeCategory"] == "Credit"
    assert by["AWS Activate credit"]["BilledCost"] == -5.0
    storage = by["Standard storage"]
    assert storage["InvoiceIssuerName"] == "Amazon Web Services"  # AWS left it null
    assert storage["PublisherName"] == "AWS"
    # AWS left the unit price and SkuPriceId out; FOCUS wants both on a Usage row, so the unit
    # price is ListCost / PricingQuantity and the price id is SkuId/unit.
    assert storage["ListUnitPrice"] == pytest.approx(0.0371 / 1.6129)
    assert storage["SkuPriceId"] == f"{S3[0]}/GB-Mo"
    assert (sp["PricingCategory"], sp["CommitmentDiscountQuantity"]) == ("Committed", 1.1424)
    assert ri["SkuPriceId"] == "GTZXQ4F9WS9JZT4B.6YS6EN2CT7"  # AWS's own id wins
    assert (storage["ServiceCategory"], storage["ServiceSubcategory"]) == S3[2:]
    tags = [json.loads(r["Tags"]) for r in rows if r["Tags"]]
    assert tags == [{"team": "search"}]


def test_a_rerun_adds_nothing(export: Export, warehouse: DuckDBWarehouse) -> None:
    run(warehouse, export)
    first = focus_rows(warehouse, "acme", "aws")
    run(warehouse, export, run_id="run-2")
    again = focus_rows(warehouse, "acme", "aws")
    assert len(again) == len(first) == len(ROWS)
    assert billed_total(again) == billed_total(first) == total("BilledCost")
    assert count_rows(warehouse, "acme", "aws_focus_export_raw") == len(ROWS)
    assert {r["x_run_id"] for r in again} == {"run-2"}


def test_a_one_day_rerun_leaves_other_days_and_other_orgs(
    export: Export, warehouse: DuckDBWarehouse
) -> None:
    run(warehouse, export)
    run(warehouse, export, org="globex", run_id="globex-1")
    globex = focus_rows(warehouse, "globex", "aws")
    day4 = date(2026, 10, 4)
    run(warehouse, export, start=day4, end=day4, run_id="run-3")
    rows = focus_rows(warehouse, "acme", "aws")
    assert len(rows) == len(ROWS) and billed_total(rows) == total("BilledCost")
    assert {r["x_run_id"] for r in rows if r["x_pipeline_run_date"] == day4} == {"run-3"}
    assert {r["x_run_id"] for r in rows if r["x_pipeline_run_date"] != day4} == {"run-1"}
    assert focus_rows(warehouse, "globex", "aws") == globex


def test_an_assumed_role_reads_the_export(
    export: Export, warehouse: DuckDBWarehouse, tmp_path: Path
) -> None:
    aws = export.aws
    assumer = aws.add_user(
        "assumer", [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]
    )
    role = aws.add_role(
        "export-reader", "assumer", s3_statements(BUCKET, actions=("s3:GetObject",))
    )
    run(warehouse, export, credential=export.credential(**assumer, role_arn=role))
    assert billed_total(focus_rows(warehouse, "acme", "aws")) == total("BilledCost")

    # A role that does not trust this user: STS refuses, moto decides.
    stranger = aws.add_role("not-for-you", "admin", s3_statements(BUCKET))
    with pytest.raises(TerminalError) as err:
        run(DuckDBWarehouse(tmp_path / "w2.duckdb"), export,
            credential=export.credential(**assumer, role_arn=stranger))  # fmt: skip
    assert f"access denied to role {stranger}" in str(err.value)
    assert assumer["secret_access_key"] not in str(err.value)


# -- bad input: a clear TerminalError, and nothing written ----------------------------------


def assert_nothing_written(wh: DuckDBWarehouse) -> None:
    assert count_rows(wh, "acme", "aws_focus_export_raw") == 0
    assert focus_rows(wh, "acme", "aws") == []


def failing_run(
    wh: DuckDBWarehouse, export: Export, kind: type[Exception] = TerminalError, **kwargs: Any
) -> str:
    log = ListLog()
    with pytest.raises(kind) as err:
        run(wh, export, log=log, **kwargs)
    assert_nothing_written(wh)
    message = str(err.value)
    secret = kwargs.get("credential", export.credential())["secret_access_key"]
    for text in (message, *(m for _, m in log.lines)):
        assert secret not in text and export.reader["secret_access_key"] not in text
    return message


def test_wrong_bucket(export: Export, warehouse: DuckDBWarehouse) -> None:
    message = failing_run(warehouse, export, credential=export.credential(bucket="acme-billing-x"))
    assert message == "S3 bucket 'acme-billing-x' does not exist"


def test_missing_manifest(export: Export, warehouse: DuckDBWarehouse) -> None:
    message = failing_run(warehouse, export, start=date(2026, 9, 1), end=date(2026, 9, 30))
    missing = f"s3://{BUCKET}/{ROOT}/metadata/BILLING_PERIOD=2026-09/{EXPORT}-Manifest.json"
    assert f"no manifest for billing period 2026-09 at {missing}" in message
    # A wrong export name looks the same from S3: no manifest where it should be.
    message = failing_run(warehouse, export, credential=export.credential(export_name="focus"))
    assert (
        "no manifest for billing period 2026-10 at s3://acme-billing/cur/focus/metadata/" in message
    )


def test_corrupt_parquet_listed_by_the_manifest(export: Export, warehouse: DuckDBWarehouse) -> None:
    root = f"{PREFIX}/broken"
    good = f"{root}/data/BILLING_PERIOD=2026-10/broken-00001.snappy.parquet"
    bad = f"{root}/data/BILLING_PERIOD=2026-10/broken-00002.snappy.parquet"
    export.put(good, parquet(DAY_3))
    export.put(bad, os.urandom(4096))
    export.put(f"{root}/metadata/BILLING_PERIOD=2026-10/broken-Manifest.json", manifest(good, bad))
    message = failing_run(warehouse, export, credential=export.credential(export_name="broken"))
    assert message.startswith(f"{bad}: not a readable Parquet file")


def test_manifest_that_is_not_json_or_names_a_missing_file(
    export: Export, warehouse: DuckDBWarehouse
) -> None:
    meta = f"{PREFIX}/%s/metadata/BILLING_PERIOD=2026-10/%s-Manifest.json"
    export.put(meta % ("garbled", "garbled"), b"<Error>not a manifest</Error>")
    message = failing_run(warehouse, export, credential=export.credential(export_name="garbled"))
    uri = f"s3://{BUCKET}/{meta % ('garbled', 'garbled')}"
    assert message.startswith(f"manifest {uri} is not valid JSON")

    gone = f"{PREFIX}/gone/data/BILLING_PERIOD=2026-10/gone-00001.snappy.parquet"
    export.put(meta % ("gone", "gone"), manifest(f"s3://{BUCKET}/{gone}"))
    message = failing_run(warehouse, export, credential=export.credential(export_name="gone"))
    assert message == f"data file s3://{BUCKET}/{gone} is listed in the manifest but does not exist"


def test_access_denied_by_iam(export: Export, warehouse: DuckDBWarehouse) -> None:
    outsider = export.aws.users["outsider"]  # may use S3 only on someone-elses-bucket
    message = failing_run(warehouse, export, credential=export.credential(**outsider))
    assert message.startswith(f"access denied to s3://{BUCKET}/{MANIFEST} (AccessDenied)")


def test_wrong_secret_key_and_unknown_key_id(export: Export, warehouse: DuckDBWarehouse) -> None:
    wrong = "x9Yz" + export.reader["secret_access_key"][4:]
    message = failing_run(warehouse, export, credential=export.credential(secret_access_key=wrong))
    assert message == (
        f"AWS rejected the credential reading s3://{BUCKET}/{MANIFEST}: the request signature "
        "does not match: wrong secret_access_key (SignatureDoesNotMatch)"
    )
    message = failing_run(
        warehouse, export, credential=export.credential(access_key_id="AKIAIOSFODNN7EXAMPLE")
    )
    assert "its access_key_id is not known to AWS (InvalidAccessKeyId)" in message
    assert "AKIAIOSFODNN7EXAMPLE" not in message


def test_unreachable_endpoint_is_transient(export: Export, warehouse: DuckDBWarehouse) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    message = failing_run(
        warehouse, export, TransientError, credential=export.credential(endpoint_url=closed)
    )
    assert message == (
        f"cannot reach AWS reading s3://{BUCKET}/{MANIFEST} (EndpointConnectionError)"
    )
