"""OCI billing: FOCUS cost reports read with the oci SDK from a local Object Storage server.

The server (tests/support/oci_object_storage.py) verifies every request's API-key signature
and enforces per-user bucket grants, so access-denied cases are real refusals, not mocks.
Fixture reports for October 2026 (tenancy TENANCY, namespace bling):

    FOCUS Reports/2026/09/30/  SEPT      (before the run: never listed)
    FOCUS Reports/2026/10/01/  FILE_E    a September row (dropped by date) and a Purchase
    FOCUS Reports/2026/10/02/  FILE_A    compute and object storage usage, Oct 1-2
    FOCUS Reports/2026/10/05/  FILE_B    Oct 3-4 charges, delivered late: block storage, used
                                         and unused commitment, a credit and a tax row
    FOCUS Reports/2026/10/06/  FILE_C    FILE_A re-delivered, plus two new Oct 5 rows
    FOCUS Reports/2026/11/02/  FILE_D    an Oct 31 row (found by the lookahead) and a Nov row
    FOCUS Reports/2026/11/04/  BEYOND    after the 3-day lookahead: never listed
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pipeline_ops_core.errors import PipelineOpsError, TerminalError, TransientError
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
from tests.support.oci_object_storage import (
    ApiKey,
    OciObjectStorageServer,
    make_api_key,
    report_csv_gz,
)
from tests.support.servers import free_port
from warehouse.duckdb import DuckDBWarehouse

PIPELINE = "configs/cloud/oci/cost/billing.yml"
NS = "bling"
TENANCY = "ocid1.tenancy.oc1..aaaaaaaacustomertenancyforocitests"
CORRUPT_TENANCY = "ocid1.tenancy.oc1..aaaaaaaasecondtenancywithacorruptfile"
USER = "ocid1.user.oc1..aaaaaaaabillingreaderuser"
NO_GRANT_USER = "ocid1.user.oc1..aaaaaaaauserwithoutthepolicy"
UNREGISTERED_USER = "ocid1.user.oc1..aaaaaaaauserwhosekeyisnotuploaded"
COMMITMENT = "ocid1.subscription.oc1..aaaaaaaauniversalcredits"
OCTOBER = (date(2026, 10, 1), date(2026, 10, 31))


def row(ref: str, day: str, service: str, category: str, billed: str, **extra: str) -> dict:
    """One report line: hourly usage by default, in the reader's compartment."""
    base = {
        "BilledCost": billed,
        "EffectiveCost": billed,
        "ListCost": billed,
        "BillingAccountId": TENANCY,
        "BillingAccountName": "acme-tenancy",
        "BillingCurrency": "USD",
        "BillingPeriodStart": "2026-10-01T00:00:00Z",
        "BillingPeriodEnd": "2026-11-01T00:00:00Z",
        "ChargeCategory": "Usage",
        "ChargeDescription": f"{service} usage",
        "ChargeFrequency": "Usage-Based",
        "ChargePeriodStart": f"{day}T10:00:00Z",
        "ChargePeriodEnd": f"{day}T11:00:00Z",
        "ChargeSubcategory": "On-Demand",
        "InvoiceIssuer": "Oracle",
        "PricingCategory": "On-Demand",
        "PricingQuantity": "2",
        "PricingUnit": "OCPU Per Hour",
        "Provider": "Oracle",
        "Publisher": "Oracle",
        "Region": "eu-frankfurt-1",
        "ResourceId": f"ocid1.instance.oc1.eu-frankfurt-1.{ref.lower()}",
        "ServiceCategory": category,
        "ServiceName": service,
        "SkuId": "B93113",
        "SubAccountId": "ocid1.compartment.oc1..aaaaaaaafinance",
        "SubAccountName": "finance",
        "Tags": '{"team": "billing"}',
        "UsageQuantity": "2",
        "UsageUnit": "OCPU Per Hour",
        "oci_ReferenceNumber": ref,
        "oci_CompartmentId": "ocid1.compartment.oc1..aaaaaaaafinance",
        "oci_CompartmentName": "finance",
        "oci_OverageFlag": "N",
        "oci_AttributedCost": billed,
    }
    return base | extra


FILE_A_ROWS = [
    row("R-1001", "2026-10-01", "COMPUTE", "Compute", "12.34"),
    row("R-1002", "2026-10-01", "OBJECT_STORAGE", "Storage", "3.21", PricingUnit="GB Months"),
    row("R-1003", "2026-10-02", "COMPUTE", "Compute", "7.77"),
]
FILE_B_ROWS = [
    row("R-2001", "2026-10-03", "BLOCK_STORAGE", "Storage", "4.56"),
    row(
        "R-2002",
        "2026-10-03",
        "COMPUTE",
        "Compute",
        "0",
        EffectiveCost="25.00",
        ListCost="30.00",
        ChargeSubcategory="Used Commitment",
        PricingCategory="",
        CommitmentDiscountId=COMMITMENT,
        CommitmentDiscountName="Universal Credits 2026",
        CommitmentDiscountType="Universal Credits",
    ),
    row(
        "R-2003",
        "2026-10-03",
        "COMPUTE",
        "Compute",
        "0",
        EffectiveCost="5.00",
        ChargeSubcategory="Unused Commitment",
        PricingCategory="",
        CommitmentDiscountId=COMMITMENT,
        CommitmentDiscountName="Universal Credits 2026",
    ),
    row(
        "R-2004",
        "2026-10-04",
        "",
        "",
        "-5.00",
        ChargeCategory="Credit",
        ChargeSubcategory="",
        ChargeDescription="Promotional credit",
        ChargeFrequency="One-Time",
        PricingCategory="",
        PricingQuantity="",
        PricingUnit="",
        UsageQuantity="",
        UsageUnit="",
        ResourceId="",
    ),
    row(
        "R-2005",
        "2026-10-04",
        "",
        "",
        "2.19",
        ChargeCategory="Tax",
        ChargeSubcategory="",
        ChargeDescription="VAT",
        ChargeFrequency="One-Time",
        PricingCategory="",
        PricingQuantity="",
        PricingUnit="",
        UsageQuantity="",
        UsageUnit="",
        ResourceId="",
    ),
]
FILE_C_NEW_ROWS = [
    row("R-3001", "2026-10-05", "GENERATIVE_AI", "AI and Machine Learning", "9.99"),
    row("R-3002", "2026-10-05", "Autonomous Database", "Database", "15.00"),
]
FILE_D_ROWS = [
    row("R-4001", "2026-10-31", "COMPUTE", "Compute", "1.11"),
    row("R-4002", "2026-11-01", "COMPUTE", "Compute", "2.22"),
]
FILE_E_ROWS = [
    row("R-0001", "2026-09-30", "COMPUTE", "Compute", "100.00"),
    row(
        "R-0002",
        "2026-10-01",
        "Oracle Support",
        "Management and Governance",
        "50.00",
        ChargeCategory="Purchase",
        ChargeFrequency="One-Time",
        ChargeSubcategory="",
        PricingCategory="",
    ),
]

FILE_E = "FOCUS Reports/2026/10/01/0001000000123400.csv.gz"
FILE_A = "FOCUS Reports/2026/10/02/0001000000123401.csv.gz"
FILE_B = "FOCUS Reports/2026/10/05/0001000000123402.csv.gz"
FILE_C = "FOCUS Reports/2026/10/06/0001000000123403.csv.gz"
FILE_D = "FOCUS Reports/2026/11/02/0001000000123404.csv.gz"
SEPT = "FOCUS Reports/2026/09/30/0001000000123399.csv.gz"
BEYOND = "FOCUS Reports/2026/11/04/0001000000123405.csv.gz"
REPORTS: dict[str, list[dict]] = {
    FILE_E: FILE_E_ROWS,
    FILE_A: FILE_A_ROWS,
    FILE_B: FILE_B_ROWS,
    FILE_C: FILE_A_ROWS + FILE_C_NEW_ROWS,  # a re-delivery of FILE_A's lines, plus new ones
    FILE_D: FILE_D_ROWS,
    SEPT: [row("R-9001", "2026-09-30", "COMPUTE", "Compute", "99.00")],
    BEYOND: [row("R-5001", "2026-10-31", "COMPUTE", "Compute", "77.00")],
}
LISTED = [FILE_E, FILE_A, FILE_B, FILE_C, FILE_D]


def expected_rows(start: date, end: date) -> list[dict]:
    """The export's own view: every line item once, charged in [start, end], listed files."""
    seen: dict[str, dict] = {}
    for name in LISTED:
        for line in REPORTS[name]:
            seen.setdefault(line["oci_ReferenceNumber"], line)
    return [
        line
        for line in seen.values()
        if start <= date.fromisoformat(line["ChargePeriodStart"][:10]) <= end
    ]


def export_total(start: date, end: date) -> Decimal:
    return money(sum(Decimal(line["BilledCost"]) for line in expected_rows(start, end)))


@dataclass
class OciWorld:
    server: OciObjectStorageServer
    key: ApiKey
    no_grant_key: ApiKey
    unregistered_key: ApiKey

    def credential(self, key: ApiKey | None = None, **overrides: Any) -> dict[str, Any]:
        key = key or self.key
        return {
            "user": key.user,
            "fingerprint": key.fingerprint,
            "tenancy": key.tenancy,
            "region": "eu-frankfurt-1",
            "key_content": key.private_pem,
            "service_endpoint": self.server.url,
        } | overrides


@pytest.fixture(scope="module")
def oci_world() -> Iterator[OciWorld]:
    server = OciObjectStorageServer(page_limit=2)
    key = make_api_key(TENANCY, USER)
    no_grant = make_api_key(TENANCY, NO_GRANT_USER)
    unregistered = make_api_key(TENANCY, UNREGISTERED_USER)
    server.register_key(key)
    server.register_key(no_grant)
    server.create_bucket(NS, TENANCY)
    server.grant(USER, NS, TENANCY)
    for name, lines in REPORTS.items():
        folder_day = datetime.strptime(name.split("/", 1)[1][:10], "%Y/%m/%d")
        server.put_object(
            NS, TENANCY, name, report_csv_gz(lines), time_created=folder_day.replace(tzinfo=UTC)
        )
    # An empty folder marker, as consoles create: listed, then skipped as not a report.
    server.put_object(NS, TENANCY, "FOCUS Reports/2026/10/03/", b"")
    server.create_bucket(NS, CORRUPT_TENANCY)
    server.grant(USER, NS, CORRUPT_TENANCY)
    server.put_object(NS, CORRUPT_TENANCY, FILE_A, report_csv_gz(FILE_A_ROWS))
    server.put_object(NS, CORRUPT_TENANCY, FILE_B, b"\x1f\x8b\x08\x00not really gzip at all")
    yield OciWorld(server, key, no_grant, unregistered)
    server.close()


@pytest.fixture
def warehouse(tmp_path: Path) -> DuckDBWarehouse:
    return DuckDBWarehouse(tmp_path / "w.duckdb")


def by_ref(warehouse: DuckDBWarehouse, org: str = "acme") -> dict[str, dict]:
    raw = warehouse.query(f"SELECT * FROM `{org}_dev.oci_focus_report_raw`").to_pylist()
    return {_ref(r["x_extensions"]): r for r in raw}


def _ref(extensions: str) -> str:
    return str(json.loads(extensions)["oci_ReferenceNumber"])


def focus_by_ref(warehouse: DuckDBWarehouse, org: str = "acme") -> dict[str, dict]:
    """FOCUS rows keyed by reference number (each fixture row has a distinct ResourceId/cost)."""
    raw = by_ref(warehouse, org)
    key = {
        (r["charge_period_start"], r["billed_cost"], r["effective_cost"], r["resource_id"]): ref
        for ref, r in raw.items()
    }
    return {
        key[(r["ChargePeriodStart"], r["BilledCost"], r["EffectiveCost"], r["ResourceId"])]: r
        for r in focus_rows(warehouse, org, "oci")
    }


# -- the happy path ------------------------------------------------------------------------


def test_october_reports_load_once_with_the_exports_total(
    oci_world: OciWorld, warehouse: DuckDBWarehouse
) -> None:
    server = oci_world.server
    server.requests.clear()
    log = ListLog()
    results = run_pipeline(
        warehouse,
        PIPELINE,
        start=OCTOBER[0],
        end=OCTOBER[1],
        credential=oci_world.credential(),
        log=log,
    )

    expected = expected_rows(*OCTOBER)
    assert len(expected) == 12
    assert results["extract"].metrics["files"] == len(LISTED)
    assert results["extract"].metrics["rows"] == 12
    assert any("dropped 3 re-delivered report row(s)" in m for _, m in log.lines)

    rows = focus_rows(warehouse, "acme", "oci")
    assert len(rows) == 12
    assert billed_total(rows) == export_total(*OCTOBER) == Decimal("101.17")
    assert count_rows(warehouse, "acme", "oci_focus_report_raw") == 12
    assert_focus_rows_valid(rows)
    assert_run_lineage(rows, "cloud_oci_billing")
    for r in rows:
        assert r["x_provider"] == "oci" and r["x_source"] == "oci_focus_report"
        assert OCTOBER[0] <= r["x_pipeline_run_date"] <= OCTOBER[1]

    # Listing was one range, paged at the server's 2-object limit; only report files fetched.
    lists = server.list_requests()
    assert len(lists) == 3
    assert lists[0].query["prefix"] == "FOCUS Reports/"
    assert lists[0].query["start"] == "FOCUS Reports/2026/10/01/"
    assert lists[0].query["end"] == "FOCUS Reports/2026/11/04/"
    # Pages: [E, A], [the 10/03 folder marker, B], [C, D]; each next `start` is nextStartWith.
    assert lists[1].query["start"] == "FOCUS Reports/2026/10/03/"
    assert lists[2].query["start"] == FILE_C
    assert any(
        "listed 5 report file(s) in 3 page(s)" in m and "skipped 1 other" in m for _, m in log.lines
    )
    assert all(r.user == USER and r.status == 200 for r in server.requests)
    assert sorted(r.path.split("/o/", 1)[1] for r in server.get_requests()) == sorted(LISTED)


def test_focus_mapping_of_oci_rows(oci_world: OciWorld, warehouse: DuckDBWarehouse) -> None:
    run_pipeline(
        warehouse, PIPELINE, start=OCTOBER[0], end=OCTOBER[1], credential=oci_world.credential()
    )
    raw = by_ref(warehouse)
    # The original delivery is kept, not the re-delivery; the late row came from its folder.
    assert raw["R-1001"]["x_source_file"] == FILE_A
    assert raw["R-2001"]["x_source_file"] == FILE_B
    assert set(raw) == {line["oci_ReferenceNumber"] for line in expected_rows(*OCTOBER)}

    focus = focus_by_ref(warehouse)
    compute = focus["R-1001"]
    assert (compute["ServiceCategory"], compute["ServiceSubcategory"]) == (
        "Compute",
        "Virtual Machines",
    )
    for name in ("ProviderName", "PublisherName", "InvoiceIssuerName", "ServiceProviderName"):
        assert compute[name] == "Oracle"
    assert compute["HostProviderName"] == "Oracle"
    assert compute["SubAccountId"] == "ocid1.compartment.oc1..aaaaaaaafinance"
    assert compute["SubAccountType"] == "Compartment"
    assert compute["ConsumedQuantity"] == 2 and compute["ConsumedUnit"] == "OCPU Per Hour"
    assert compute["RegionName"] == "eu-frankfurt-1" and compute["PricingCategory"] == "Standard"
    assert compute["BillingAccountId"] == TENANCY and compute["BillingCurrency"] == "USD"
    assert focus["R-1002"]["ServiceSubcategory"] == "Object Storage"
    assert focus["R-2001"]["ServiceSubcategory"] == "Block Storage"

    used, unused = focus["R-2002"], focus["R-2003"]
    assert (used["CommitmentDiscountStatus"], unused["CommitmentDiscountStatus"]) == (
        "Used",
        "Unused",
    )
    for r in (used, unused):
        assert r["CommitmentDiscountId"] == COMMITMENT
        assert r["CommitmentDiscountCategory"] == "Spend"
        assert r["PricingCategory"] == "Committed"
        assert r["BilledCost"] == 0
    assert used["EffectiveCost"] == 25.0 and used["ContractedCost"] == 30.0
    assert used["CommitmentDiscountType"] == "Universal Credits"

    credit, tax = focus["R-2004"], focus["R-2005"]
    assert (credit["ChargeCategory"], credit["BilledCost"]) == ("Credit", -5.0)
    assert (tax["ChargeCategory"], tax["BilledCost"]) == ("Tax", 2.19)
    for r in (credit, tax):
        assert (r["ServiceCategory"], r["ServiceSubcategory"]) == ("Other", "Other (Other)")
        assert r["ChargeFrequency"] == "One-Time" and r["PricingCategory"] is None
        assert r["CommitmentDiscountStatus"] is None
    assert tax["PricingQuantity"] is None and tax["PricingUnit"] is None

    assert focus["R-0002"]["ChargeCategory"] == "Purchase"
    assert focus["R-0002"]["ChargeFrequency"] == "One-Time"
    assert focus["R-0002"]["ServiceCategory"] == "Management and Governance"
    genai, adb = focus["R-3001"], focus["R-3002"]
    assert (genai["ServiceCategory"], genai["ServiceSubcategory"]) == (
        "AI and Machine Learning",
        "Generative AI",
    )
    assert (adb["ServiceCategory"], adb["ServiceSubcategory"]) == (
        "Databases",
        "Relational Databases",
    )
    # The late-file lookahead found Oct 31 in the 2026/11/02 folder.
    assert focus["R-4001"]["BilledCost"] == 1.11


def test_rerun_adds_nothing_and_one_day_rerun_touches_only_its_day(
    oci_world: OciWorld, warehouse: DuckDBWarehouse
) -> None:
    cred = oci_world.credential()
    run_pipeline(warehouse, PIPELINE, start=OCTOBER[0], end=OCTOBER[1], credential=cred)
    run_pipeline(
        warehouse, PIPELINE, start=OCTOBER[0], end=OCTOBER[1], credential=cred, org="globex"
    )
    before = focus_rows(warehouse, "acme", "oci")
    globex_before = focus_rows(warehouse, "globex", "oci")

    run_pipeline(
        warehouse, PIPELINE, start=OCTOBER[0], end=OCTOBER[1], credential=cred, run_id="run-2"
    )
    after = focus_rows(warehouse, "acme", "oci")
    assert len(after) == len(before) == 12
    assert billed_total(after) == billed_total(before) == export_total(*OCTOBER)
    assert count_rows(warehouse, "acme", "oci_focus_report_raw") == 12
    assert {r["x_run_id"] for r in after} == {"run-2"}

    day = date(2026, 10, 3)
    run_pipeline(warehouse, PIPELINE, start=day, end=day, credential=cred, run_id="run-3")
    final = focus_rows(warehouse, "acme", "oci")
    assert len(final) == 12 and billed_total(final) == export_total(*OCTOBER)
    for r in final:
        on_day = r["x_pipeline_run_date"] == day
        assert r["x_run_id"] == ("run-3" if on_day else "run-2")
    assert sum(r["x_pipeline_run_date"] == day for r in final) == 3
    globex_after = focus_rows(warehouse, "globex", "oci")
    assert _stable(globex_after) == _stable(globex_before)


def _stable(rows: list[dict]) -> list[tuple]:
    skip = {"x_ingested_at"}
    return sorted(tuple(sorted((k, str(v)) for k, v in r.items() if k not in skip)) for r in rows)


# -- bad input: a clear error, nothing written, no key material ----------------------------


def run_failing(
    warehouse: DuckDBWarehouse,
    credential: dict,
    *,
    start: date = OCTOBER[0],
    end: date = OCTOBER[1],
    expect: type[PipelineOpsError] = TerminalError,
) -> tuple[str, ListLog]:
    log = ListLog()
    with pytest.raises(expect) as caught:
        run_pipeline(warehouse, PIPELINE, start=start, end=end, credential=credential, log=log)
    assert count_rows(warehouse, "acme", "oci_focus_report_raw") == 0
    assert count_rows(warehouse, "acme", "cost_data_standard_1_3") == 0
    message = str(caught.value)
    logged = "\n".join(m for _, m in log.lines)
    for fragment in secret_fragments_of(credential):
        assert fragment not in message and fragment not in logged
    return message, log


def secret_fragments_of(credential: dict) -> list[str]:
    pem = str(credential.get("key_content") or "")
    body = [line for line in pem.splitlines() if line and "-----" not in line]
    return [*body[:3], *body[-3:], pem] if body else []


def test_wrong_bucket(oci_world: OciWorld, warehouse: DuckDBWarehouse) -> None:
    wrong = "ocid1.tenancy.oc1..aaaaaaaanotthecustomerstenancy"
    message, _ = run_failing(warehouse, oci_world.credential(bucket=wrong))
    assert f"namespace 'bling', bucket '{wrong}': BucketNotFound" in message
    assert "does not exist and when the user is not authorized" in message
    assert "endorse group <group> to read objects in tenancy usage-report" in message


def test_wrong_namespace(oci_world: OciWorld, warehouse: DuckDBWarehouse) -> None:
    message, _ = run_failing(warehouse, oci_world.credential(namespace="acme-ns"))
    assert f"namespace 'acme-ns', bucket '{TENANCY}': NamespaceNotFound" in message


def test_access_denied_for_a_user_without_the_policy(
    oci_world: OciWorld, warehouse: DuckDBWarehouse
) -> None:
    """A valid, registered key whose user has no grant: OCI's 404 'or not authorized'."""
    server = oci_world.server
    server.requests.clear()
    message, _ = run_failing(warehouse, oci_world.credential(oci_world.no_grant_key))
    assert f"bucket '{TENANCY}': BucketNotFound" in message
    assert "not authorized to read it" in message
    # The server authenticated the user, then refused: this is authorization, not a bad key.
    assert [(r.user, r.status) for r in server.requests] == [(NO_GRANT_USER, 404)]


def test_bad_signature_is_rejected_with_401(
    oci_world: OciWorld, warehouse: DuckDBWarehouse
) -> None:
    server = oci_world.server
    server.requests.clear()
    # A key pair whose public half was never uploaded for the user.
    message, _ = run_failing(warehouse, oci_world.credential(oci_world.unregistered_key))
    assert "OCI Object Storage rejected the API key" in message
    assert "401 NotAuthenticated" in message and f"bucket '{TENANCY}'" in message
    # The right user and fingerprint, signed with another private key: the signature fails.
    forged = oci_world.credential(key_content=oci_world.unregistered_key.private_pem)
    message, _ = run_failing(warehouse, forged)
    assert "401 NotAuthenticated" in message
    assert [r.status for r in server.requests] == [401, 401]
    assert all(r.user is None for r in server.requests)
    assert oci_world.key.private_pem not in message


def test_corrupt_gzip_report(oci_world: OciWorld, warehouse: DuckDBWarehouse) -> None:
    cred = oci_world.credential(bucket=CORRUPT_TENANCY)
    message, _ = run_failing(warehouse, cred)
    assert message.startswith(f"{FILE_B}: not a readable gzip file")


def test_no_report_files_for_the_period(oci_world: OciWorld, warehouse: DuckDBWarehouse) -> None:
    message, _ = run_failing(
        warehouse, oci_world.credential(), start=date(2025, 1, 1), end=date(2025, 1, 31)
    )
    assert "no OCI FOCUS report files under prefix 'FOCUS Reports/2025/01/01/' .. " in message
    assert "'FOCUS Reports/2025/02/03/'" in message
    assert f"namespace 'bling', bucket '{TENANCY}'" in message


def test_invalid_credential_names_fields_not_values(
    oci_world: OciWorld, warehouse: DuckDBWarehouse
) -> None:
    message, _ = run_failing(warehouse, oci_world.credential(fingerprint="not-a-fingerprint"))
    assert message == "OCI credential is invalid: fingerprint malformed"
    message, _ = run_failing(warehouse, oci_world.credential(key_content=None, user=None))
    assert message == "OCI credential is invalid: key_content missing, user missing"
    garbled = oci_world.key.private_pem.replace("MII", "XXX", 1)
    message, _ = run_failing(warehouse, oci_world.credential(key_content=garbled))
    assert message.startswith("OCI credential is invalid: key_content is not a PEM private key")
    for fragment in secret_fragments_of({"key_content": garbled}):
        assert fragment not in message


def test_encrypted_key_with_pass_phrase(oci_world: OciWorld, warehouse: DuckDBWarehouse) -> None:
    server = oci_world.server
    key = make_api_key(TENANCY, "ocid1.user.oc1..aaaaaaaaencryptedkeyuser", pass_phrase="s3cr3t!")
    server.register_key(key)
    server.grant(key.user, NS, TENANCY)
    message, _ = run_failing(warehouse, oci_world.credential(key))
    assert message == (
        "OCI credential is invalid: key_content is encrypted and pass_phrase is missing"
    )
    message, _ = run_failing(warehouse, oci_world.credential(key, pass_phrase="wrong"))
    assert "s3cr3t!" not in message and "wrong" not in message
    run_pipeline(
        warehouse,
        PIPELINE,
        start=OCTOBER[0],
        end=OCTOBER[1],
        credential=oci_world.credential(key, pass_phrase="s3cr3t!"),
    )
    assert billed_total(focus_rows(warehouse, "acme", "oci")) == export_total(*OCTOBER)


@pytest.mark.parametrize(
    ("status", "code"), [(429, "TooManyRequests"), (503, "ServiceUnavailable")]
)
def test_throttling_and_server_errors_are_transient(
    oci_world: OciWorld, warehouse: DuckDBWarehouse, status: int, code: str
) -> None:
    server = oci_world.server
    server.requests.clear()
    server.fail(status, code)
    message, _ = run_failing(warehouse, oci_world.credential(), expect=TransientError)
    assert message == (
        f"OCI Object Storage namespace 'bling', bucket '{TENANCY}' answered {status} {code}; "
        "try again later"
    )
    # One attempt: the step's retry policy, not the SDK, decides when to try again.
    assert len(server.requests) == 1


def test_fault_while_fetching_a_file_writes_nothing(
    oci_world: OciWorld, warehouse: DuckDBWarehouse
) -> None:
    server = oci_world.server
    server.requests.clear()
    server.faults.clear()
    # The listing and the first files succeed; the last file's download fails.
    server.fail(500, "InternalServerError", path=FILE_D)
    message, _ = run_failing(warehouse, oci_world.credential(), expect=TransientError)
    assert [r.status for r in server.get_requests()][-1] == 500
    assert message == (
        f"OCI Object Storage object '{FILE_D}' in namespace 'bling', bucket '{TENANCY}' "
        "answered 500 InternalServerError; try again later"
    )


def test_unreachable_endpoint_is_transient(oci_world: OciWorld, warehouse: DuckDBWarehouse) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    message, _ = run_failing(
        warehouse, oci_world.credential(service_endpoint=endpoint), expect=TransientError
    )
    assert message == (
        f"cannot reach OCI Object Storage at {endpoint} (RequestException); try again later"
    )
