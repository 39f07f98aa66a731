"""The GCP billing pipeline against the BigQuery emulator and a local Catalog API server.

The customer's Cloud Billing export is a real table in bqemulator (the export's RECORD and
REPEATED RECORD columns, ingestion-time partitioned), read with the org's own service
account (signed JWT grant at a local token endpoint) through google-cloud-bigquery. SKU list
prices come from tests/support/gcp_catalog_server.py over httpx. Totals are computed here
from the fixture rows with Decimal, independently of the code under test.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from pipeline_ops_core.errors import TerminalError
from processors.cloud.gcp.billing_export import ExternalBqExtractor
from processors.generic.procedure_executor import ProcedureExecutor
from tests.integration.bigquery_emulator import bigquery_emulator  # noqa: F401
from tests.support.cloud import (
    assert_focus_rows_valid,
    assert_run_lineage,
    billed_total,
    count_rows,
    focus_rows,
    money,
    run_pipeline,
)
from tests.support.focus_validator import assert_validator_passes
from tests.support.gcp_catalog_server import (
    CatalogServer,
    DenyingProxy,
    TokenServer,
    pem_lines,
    service_account_key,
)
from tests.support.genai import ListLog, step_context
from tests.support.servers import Server
from warehouse import from_url
from warehouse.duckdb import DuckDBWarehouse

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests/data/cloud/gcp"
PIPELINE = "configs/cloud/gcp/cost/billing.yml"
CUSTOMER_PROJECT = "acme-billing"
EXPORT = "gcp_billing_export_v1_01A2B3_C4D5E6_F7A8B9"
DETAILED = "gcp_billing_export_resource_v1_01A2B3_C4D5E6_F7A8B9"
D1, D2 = date(2026, 10, 1), date(2026, 10, 2)
API_KEY = "AIzaSyTest-catalog-key-0123456789abcdef"
RAW, PRICES, FOCUS = "gcp_billing_export_raw", "gcp_sku_prices", "cost_data_standard_1_3"


# -- fixtures ---------------------------------------------------------------------------------


@dataclass
class Export:
    client: bigquery.Client
    table: str  # project.dataset.table

    def load(self, path: Path) -> None:
        config = bigquery.LoadJobConfig(
            schema=self.client.get_table(self.table).schema,
            source_format="NEWLINE_DELIMITED_JSON",
            write_disposition="WRITE_APPEND",
        )
        # No size=: a resumable upload, which the emulator accepts (see bigquery_emulator.md).
        self.client.load_table_from_file(
            io.BytesIO(path.read_bytes()), self.table, job_config=config
        ).result()


def seed_export(
    emulator: Server, table_name: str = EXPORT, detailed: bool = False, partitioned: bool = True
) -> Export:
    """A fresh dataset in the customer's project holding the fixture export rows."""
    client = bigquery.Client(
        project=CUSTOMER_PROJECT,
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=emulator.url),
    )
    dataset = f"{CUSTOMER_PROJECT}.billing_{uuid.uuid4().hex[:8]}"
    client.create_dataset(dataset)
    schema = client.schema_from_json(str(DATA / "export_schema.json"))
    if detailed:
        schema += client.schema_from_json(str(DATA / "detailed_extra_schema.json"))
    table = bigquery.Table(f"{dataset}.{table_name}", schema=schema)
    if partitioned:
        table.time_partitioning = bigquery.TimePartitioning(type_="DAY")  # ingestion time
    client.create_table(table)
    export = Export(client, f"{dataset}.{table_name}")
    export.load(DATA / "export_rows.jsonl")
    return export


@pytest.fixture
def export(bigquery_emulator: Server) -> Export:  # noqa: F811
    return seed_export(bigquery_emulator)


@pytest.fixture(scope="module")
def token_server() -> Iterator[TokenServer]:
    server = TokenServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def catalog(token_server: TokenServer) -> Iterator[CatalogServer]:
    skus = json.loads((DATA / "catalog_skus.json").read_text())
    server = CatalogServer(skus, API_KEY, bearer_token=token_server.token)
    yield server
    server.close()


@pytest.fixture(scope="module")
def service_account(token_server: TokenServer) -> dict[str, Any]:
    return service_account_key(
        token_server.token_uri,
        project_id="acme-pipeline-ops",
        private_key_id="0123456789abcdef0123456789abcdef01234567",
        client_email="billing-reader@acme-pipeline-ops.iam.gserviceaccount.com",
        client_id="1",
    )


@pytest.fixture
def credential(
    export: Export,
    bigquery_emulator: Server,  # noqa: F811
    catalog: CatalogServer,
    service_account: Any,
) -> dict[str, Any]:
    return {
        **service_account,
        "billing_table": export.table,
        "api_endpoint": bigquery_emulator.url,
        "catalog_api_key": API_KEY,
        "catalog_base_url": catalog.url,
    }


@pytest.fixture
def wh(tmp_path: Path) -> DuckDBWarehouse:
    return DuckDBWarehouse(tmp_path / "w.duckdb")


# -- the export's own numbers, from the fixture files ------------------------------------------


def export_rows(*names: str) -> list[dict[str, Any]]:
    rows = []
    for name in names:
        rows += [json.loads(line) for line in (DATA / name).read_text().splitlines() if line]
    return rows


def usage_day(row: dict[str, Any]) -> date:
    return datetime.fromisoformat(row["usage_start_time"].replace("Z", "+00:00")).date()


def export_total(start: date, end: date, *files: str) -> Decimal:
    """SUM(cost) + SUM(credits.amount) over the export rows used in [start, end]."""
    total = Decimal(0)
    for row in export_rows(*(files or ("export_rows.jsonl",))):
        if start <= usage_day(row) <= end:
            total += Decimal(str(row["cost"]))
            total += sum((Decimal(str(c["amount"])) for c in row["credits"]), Decimal(0))
    return money(total)


def raw_rows(wh: Any, org: str = "acme") -> list[dict[str, Any]]:
    return wh.query(f"SELECT * FROM `{org}_dev.{RAW}` ORDER BY usage_start_time").to_pylist()


def by_description(
    rows: list[dict[str, Any]], text: str, category: str | None = None
) -> dict[str, Any]:
    found = [
        r
        for r in rows
        if text in (r["ChargeDescription"] or "") and category in (None, r["ChargeCategory"])
    ]
    assert len(found) == 1, [r["ChargeDescription"] for r in rows]
    return found[0]


# -- the happy path ---------------------------------------------------------------------------


def test_the_export_lands_in_focus_with_the_exports_own_total(
    wh: DuckDBWarehouse, credential: dict[str, Any], catalog: CatalogServer
) -> None:
    catalog.requests.clear()
    results = run_pipeline(wh, PIPELINE, start=D1, end=D2, credential=credential)

    in_window = [r for r in export_rows("export_rows.jsonl") if D1 <= usage_day(r) <= D2]
    credits = sum(len(r["credits"]) for r in in_window)
    raw = raw_rows(wh)
    assert len(raw) == len(in_window) + credits == 14
    assert results["extract"].metrics["export_rows"] == len(in_window)
    assert results["extract"].metrics["credit_rows"] == credits
    assert results["extract"].metrics["export_time_watermark"] == "2026-10-03T08:00:00+00:00"
    assert money(sum(Decimal(str(r["cost"])) for r in raw)) == export_total(D1, D2)

    rows = focus_rows(wh, "acme", "gcp")
    assert len(rows) == len(raw)
    assert_focus_rows_valid(rows)
    assert billed_total(rows) == export_total(D1, D2) == Decimal("4.92")
    assert_run_lineage(rows, "cloud_gcp_billing")
    for row in rows:
        assert row["BillingAccountId"] == "01A2B3-C4D5E6-F7A8B9"
        assert (row["BillingPeriodStart"], row["BillingPeriodEnd"]) == (
            datetime(2026, 10, 1, tzinfo=UTC),
            datetime(2026, 11, 1, tzinfo=UTC),
        )
        assert (row["x_provider"], row["x_source"]) == ("gcp", "gcp_billing_export")
        assert row["ProviderName"] == row["HostProviderName"] == "Google Cloud"

    # Resource-based CUD credit: a Credit row that names the commitment.
    cud = by_description(rows, "(COMMITTED_USAGE_DISCOUNT) on N1")
    assert cud["ChargeCategory"] == "Credit" and cud["BilledCost"] == cud["EffectiveCost"] == -1.1
    assert cud["CommitmentDiscountId"] == "commitments/4213"
    assert cud["CommitmentDiscountName"] == "Committed use discount: CPU commitment cud-cpu-1"
    assert (cud["CommitmentDiscountType"], cud["CommitmentDiscountCategory"]) == (
        "Committed Use Discount",
        "Usage",
    )
    # A credit has no price: no SkuPriceId, quantity or PricingCategory (FOCUS pricing rules).
    assert (cud["CommitmentDiscountStatus"], cud["PricingCategory"]) == ("Used", None)
    assert cud["SkuPriceId"] is None and cud["PricingQuantity"] is None
    spend = by_description(rows, "(COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE)")
    assert spend["CommitmentDiscountCategory"] == "Spend" and spend["BilledCost"] == -0.25
    free = by_description(rows, "(FREE_TIER)")
    assert free["ChargeCategory"] == "Credit" and free["CommitmentDiscountId"] is None
    tax = by_description(rows, "Tax: US state sales tax")
    assert (tax["ChargeCategory"], tax["BilledCost"]) == ("Tax", 0.77)
    adjustment = by_description(rows, "Billing adjustment")
    assert (adjustment["ChargeCategory"], adjustment["BilledCost"]) == ("Adjustment", -0.5)
    assert by_description(rows, "Rounding error")["ChargeCategory"] == "Adjustment"

    # Usage rows: categories, sub-accounts, region, tags, and where ListCost came from.
    core = [r for r in rows if r["ChargeCategory"] == "Usage" and r["SkuId"] == "2E27-4F75-95CD"]
    first = next(r for r in core if r["x_pipeline_run_date"] == D1)
    assert (first["ServiceCategory"], first["ServiceSubcategory"]) == (
        "Compute",
        "Virtual Machines",
    )
    assert (first["SubAccountId"], first["SubAccountName"], first["SubAccountType"]) == (
        "acme-prod",
        "Acme Prod",
        "Project",
    )
    assert (first["RegionId"], first["AvailabilityZone"]) == ("us-central1", "us-central1-a")
    assert json.loads(first["Tags"]) == {"env": "prod", "team": "core"}
    # Catalog list price of tier 0 (0.031611/h, the newer pricingInfo) x 100 hours.
    assert first["x_price_status"] == "catalog"
    assert first["ListUnitPrice"] == pytest.approx(0.031611)
    assert first["ListCost"] == pytest.approx(3.1611)
    assert (first["PricingQuantity"], first["PricingUnit"]) == (100.0, "Hours")
    assert (first["ConsumedQuantity"], first["ConsumedUnit"]) == (360000.0, "Seconds")
    assert (first["PricingCategory"], first["SkuPriceId"]) == ("Standard", "2E27-4F75-95CD")
    analysis = by_description(rows, "Analysis", "Usage")
    assert (analysis["ServiceCategory"], analysis["ServiceSubcategory"]) == (
        "Databases",
        "Data Warehouses",
    )
    assert (analysis["x_price_status"], analysis["ListCost"]) == ("cost_at_list", 1.25)
    storage = by_description(rows, "Standard Storage", "Usage")
    assert (storage["ServiceCategory"], storage["ServiceSubcategory"]) == (
        "Storage",
        "Object Storage",
    )
    assert storage["ListCost"] == pytest.approx(0.5 * 0.026) and storage["RegionId"] is None
    gemini = by_description(rows, "Gemini 2.5 Flash", "Usage")
    assert (gemini["ServiceCategory"], gemini["ServiceSubcategory"]) == (
        "AI and Machine Learning",
        "Generative AI",
    )
    assert (gemini["x_price_status"], gemini["ListCost"]) == ("billed", 0.42)  # not in catalog
    egress = by_description(rows, "Network Internet Data Transfer", "Usage")
    assert egress["ServiceSubcategory"] == "Network Infrastructure"

    # The catalog was asked with the key, page by page, for the services billed.
    assert {r["headers"].get("x-goog-api-key") for r in catalog.requests} == {API_KEY}
    compute = [r for r in catalog.requests if "6F81-5844-456A" in r["path"]]
    assert len(compute) == 2 and "pageToken" in compute[1]["query"]
    assert results["prices"].metrics["skipped_services"] == ["C7E2-9256-1C43", "E505-1604-58F8"]
    prices = wh.query(f"SELECT sku_id, unit_price FROM `acme_dev.{PRICES}`").to_pylist()
    assert {p["sku_id"] for p in prices} == {"2E27-4F75-95CD", "E5F0-6A5D-7BAD", "3362-E469-6BEF"}


def test_a_rerun_adds_nothing_and_a_late_correction_is_picked_up(
    wh: DuckDBWarehouse, credential: dict[str, Any], export: Export
) -> None:
    for org in ("acme", "globex"):
        run_pipeline(wh, PIPELINE, start=D1, end=D2, credential=credential, org=org)
    globex = sorted(r["BilledCost"] for r in focus_rows(wh, "globex", "gcp"))
    first = focus_rows(wh, "acme", "gcp")

    run_pipeline(wh, PIPELINE, start=D1, end=D2, credential=credential, run_id="run-2")
    again = focus_rows(wh, "acme", "gcp")
    assert len(again) == len(first) and billed_total(again) == billed_total(first)
    assert len(raw_rows(wh)) == 14

    # The export adds a correction for D1's usage five days later; re-running D1 reads it.
    export.load(DATA / "late_correction.jsonl")
    log = ListLog()
    results = run_pipeline(
        wh, PIPELINE, start=D1, end=D1, credential=credential, run_id="run-3", log=log
    )
    watermark = results["extract"].metrics["export_time_watermark"]
    assert watermark == "2026-10-06T07:30:00+00:00"
    assert any(f"export_time watermark {watermark}" in m for _, m in log.lines)
    rows = focus_rows(wh, "acme", "gcp")
    assert len(rows) == len(first) + 2  # the correction and its CUD credit
    expected = export_total(D1, D2, "export_rows.jsonl", "late_correction.jsonl")
    assert billed_total(rows) == expected == billed_total(first) + Decimal("0.15")
    # D2 was not re-run: its rows are the second run's; the other org is untouched.
    assert {r["x_run_id"] for r in rows if r["x_pipeline_run_date"] == D2} == {"run-2"}
    assert {r["x_run_id"] for r in rows if r["x_pipeline_run_date"] == D1} == {"run-3"}
    assert sorted(r["BilledCost"] for r in focus_rows(wh, "globex", "gcp")) == globex
    # Re-running the same day once more changes nothing.
    run_pipeline(wh, PIPELINE, start=D1, end=D1, credential=credential, run_id="run-4")
    assert billed_total(focus_rows(wh, "acme", "gcp")) == expected
    assert len(raw_rows(wh)) == 16


def test_usage_start_time_filter_reads_the_same_rows(
    wh: DuckDBWarehouse, credential: dict[str, Any]
) -> None:
    totals = {}
    for mode in ("partitiontime", "usage_start_time"):
        ctx = step_context(
            wh, {"partition_filter": mode}, D1, D2, credential=credential, pipeline_id=mode
        )
        result = ExternalBqExtractor().run(ctx)
        assert result.metrics["partition_filter"] == mode
        got = wh.query(
            f"SELECT COUNT(*) AS n, SUM(cost) AS c FROM `acme_dev.{RAW}` WHERE x_pipeline_id = @p",
            {"p": mode},
        ).to_pylist()[0]
        totals[mode] = (got["n"], money(got["c"]))
    assert totals["partitiontime"] == totals["usage_start_time"] == (14, export_total(D1, D2))


def test_a_day_without_rows_writes_an_empty_slice_and_says_so(
    wh: DuckDBWarehouse, credential: dict[str, Any]
) -> None:
    run_pipeline(wh, PIPELINE, start=D1, end=D2, credential=credential)
    empty = date(2026, 10, 20)
    log = ListLog()
    results = run_pipeline(wh, PIPELINE, start=empty, end=empty, credential=credential, log=log)
    assert results["extract"].rows_written == 0
    assert results["extract"].metrics["export_time_watermark"] is None
    assert ("WARNING", f"{credential['billing_table']} has no rows for {empty}..{empty}") in (
        log.lines
    )
    assert len(raw_rows(wh)) == 14 and billed_total(focus_rows(wh, "acme", "gcp")) == (
        export_total(D1, D2)
    )


def test_a_table_without_ingestion_time_partitions_is_read_by_usage_time(
    wh: DuckDBWarehouse,
    bigquery_emulator: Server,  # noqa: F811
    credential: dict[str, Any],
) -> None:
    copy = seed_export(bigquery_emulator, partitioned=False)
    ctx = step_context(wh, {}, D1, D2, credential={**credential, "billing_table": copy.table})
    result = ExternalBqExtractor().run(ctx)
    assert result.metrics["partition_filter"] == "usage_start_time"
    assert (
        "WARNING",
        f"{copy.table} is not ingestion-time partitioned: filtering on usage_start_time",
    ) in ctx.log.lines  # type: ignore[attr-defined]
    assert result.rows_written == 14


def test_a_detailed_export_brings_resources_and_prices(
    wh: DuckDBWarehouse,
    bigquery_emulator: Server,  # noqa: F811
    credential: dict[str, Any],
) -> None:
    detailed = seed_export(bigquery_emulator, DETAILED, detailed=True)
    row = {
        **export_rows("late_correction.jsonl")[0],
        "resource": {
            "name": "vm-web-1",
            "global_name": "//compute.googleapis.com/projects/acme-prod/zones/us-central1-a/"
            "instances/4412",
        },
        "price": {
            "effective_price": "0.0316110000",
            "tier_start_amount": "0",
            "unit": "hour",
            "pricing_unit_quantity": "1",
        },
    }
    path = Path(wh.path).with_name("detailed.jsonl")
    path.write_text(json.dumps(row) + "\n")
    detailed.load(path)
    run_pipeline(
        wh, PIPELINE, start=D1, end=D1, credential={**credential, "billing_table": detailed.table}
    )
    raw = [r for r in raw_rows(wh) if r["resource_name"]]
    assert len(raw) == 2  # the charge and its credit
    assert raw[0]["price_effective_price"] == pytest.approx(0.031611)
    assert raw[0]["price_unit"] == "hour" and raw[0]["source_table"] == detailed.table
    focus = [r for r in focus_rows(wh, "acme", "gcp") if r["ResourceName"] == "vm-web-1"]
    assert {r["ResourceId"] for r in focus} == {row["resource"]["global_name"]}
    assert billed_total(focus_rows(wh, "acme", "gcp")) == export_total(
        D1, D1, "export_rows.jsonl", "late_correction.jsonl"
    )


def test_the_bigquery_warehouse_runs_the_same_pipeline(
    bigquery_emulator: Server,  # noqa: F811
    credential: dict[str, Any],
) -> None:
    bq = from_url(f"bigquery://test-proj?location=US&endpoint={bigquery_emulator.url}")
    org = f"o{uuid.uuid4().hex[:8]}"
    run_pipeline(bq, PIPELINE, start=D1, end=D2, credential=credential, org=org)
    rows = focus_rows(bq, org, "gcp")
    assert_focus_rows_valid(rows)
    assert len(rows) == 14 and billed_total(rows) == export_total(D1, D2)
    run_pipeline(bq, PIPELINE, start=D1, end=D2, credential=credential, org=org, run_id="run-2")
    again = focus_rows(bq, org, "gcp")
    assert len(again) == 14 and billed_total(again) == billed_total(rows)


# -- bad input: the step fails, says what, and nothing is written ------------------------------


def assert_nothing_written(wh: DuckDBWarehouse) -> None:
    assert count_rows(wh, "acme", RAW) == 0
    assert count_rows(wh, "acme", FOCUS) == 0


def assert_no_secret(text: str, credential: dict[str, Any]) -> None:
    lines = pem_lines(credential)
    assert lines and not any(line in text for line in lines)
    assert "PRIVATE KEY" not in text and credential["catalog_api_key"] not in text


def test_a_table_that_does_not_exist_names_the_table(
    wh: DuckDBWarehouse, credential: dict[str, Any], export: Export
) -> None:
    dataset = export.table.rsplit(".", 1)[0]
    missing = f"{dataset}.gcp_billing_export_v1_0A0A0A_0B0B0B_0C0C0C"
    log = ListLog()
    with pytest.raises(TerminalError) as caught:
        run_pipeline(
            wh,
            PIPELINE,
            start=D1,
            end=D2,
            credential={**credential, "billing_table": missing},
            log=log,
        )
    assert str(caught.value).startswith(f"GCP billing export table {missing} not found")
    assert_nothing_written(wh)
    assert_no_secret(str(caught.value) + repr(log.lines), credential)


def test_access_denied_is_terminal_and_never_quotes_the_key(
    wh: DuckDBWarehouse,
    bigquery_emulator: Server,  # noqa: F811
    credential: dict[str, Any],
) -> None:
    denied = f"denied-proj.billing.{EXPORT}"
    proxy = DenyingProxy(bigquery_emulator.url, "denied-proj")
    log = ListLog()
    try:
        with pytest.raises(TerminalError) as caught:
            run_pipeline(
                wh,
                PIPELINE,
                start=D1,
                end=D2,
                credential={**credential, "billing_table": denied, "api_endpoint": proxy.url},
                log=log,
            )
    finally:
        proxy.close()
    message = str(caught.value)
    # The endpoint is overridden (the operator allow-listed it), so its answer is not quoted,
    # and "denied" reads exactly like "not found".
    assert message == (
        f"GCP billing export table {denied} not found or not readable as "
        "billing-reader@acme-pipeline-ops.iam.gserviceaccount.com (grant it BigQuery Data "
        "Viewer on the export dataset and BigQuery Job User in the job project)"
    )
    assert "Access Denied" not in message
    assert proxy.denied  # the emulator's answer came through the proxy, as BigQuery's 403
    assert_nothing_written(wh)
    assert_no_secret(message + repr(log.lines), credential)


def test_a_rejected_catalog_key_fails_the_prices_step(
    wh: DuckDBWarehouse, credential: dict[str, Any]
) -> None:
    wrong = {**credential, "catalog_api_key": "AIzaSyWrong-key-for-the-catalog-0000"}
    with pytest.raises(TerminalError) as caught:
        run_pipeline(wh, PIPELINE, start=D1, end=D2, credential=wrong)
    message = str(caught.value)
    assert "HTTP 401 from the endpoint in credential catalog_base_url" in message
    assert "rejected the credential's catalog_api_key" in message
    assert wrong["catalog_api_key"] not in message
    # The extract step before it finished; nothing after it was written.
    assert count_rows(wh, "acme", RAW) == 14
    assert count_rows(wh, "acme", PRICES) == 0 and count_rows(wh, "acme", FOCUS) == 0


# -- lookback_days -------------------------------------------------------------------------------


def test_lookback_days_rereads_earlier_days_for_late_corrections(
    wh: DuckDBWarehouse, credential: dict[str, Any], export: Export
) -> None:
    run_pipeline(wh, PIPELINE, start=D1, end=D2, credential=credential)
    first = focus_rows(wh, "acme", "gcp")
    export.load(DATA / "late_correction.jsonl")  # D1's correction arrives later

    # The daily run for D2 with lookback_days 1 re-reads D1 as well.
    ctx = step_context(
        wh,
        {"lookback_days": 1},
        D2,
        D2,
        credential=credential,
        pipeline_id="cloud_gcp_billing",
        run_id="run-5",
    )
    result = ExternalBqExtractor().run(ctx)
    assert (result.metrics["window_start"], result.metrics["window_end"]) == (
        "2026-10-01",
        "2026-10-02",
    )
    unify = step_context(
        wh, {"procedure": "sp_focus_gcp"}, D2, D2, pipeline_id="cloud_gcp_billing", run_id="run-5"
    )
    ProcedureExecutor().run(unify)

    rows = focus_rows(wh, "acme", "gcp")
    assert len(rows) == len(first) + 2 and len(raw_rows(wh)) == 16
    assert billed_total(rows) == export_total(D1, D2, "export_rows.jsonl", "late_correction.jsonl")
    assert {r["x_run_id"] for r in rows} == {"run-5"}  # both days rebuilt by this run


def test_gcp_rows_pass_the_official_focus_validator(
    wh: DuckDBWarehouse, credential: dict[str, Any], tmp_path: Path
) -> None:

    run_pipeline(wh, PIPELINE, start=D1, end=D2, credential=credential)
    workdir = tmp_path / "validator"
    workdir.mkdir()
    assert_validator_passes(wh, workdir, min_rows=13)


# -- Gemini: the same export, read with the org's own service account ---------------------------


def test_gemini_reads_the_billing_export_with_the_orgs_own_key(
    wh: DuckDBWarehouse, credential: dict[str, Any], token_server: TokenServer
) -> None:
    from processors.genai.payg_usage import PaygUsageProcessor

    grants = len(token_server.assertions)
    ctx = step_context(wh, {"provider": "gemini"}, D1, D2, credential=credential)
    result = PaygUsageProcessor().run(ctx)
    # The export's one Vertex AI row (Gemini 2.5 Flash, 2026-10-02, 0.42 USD), and only it.
    # Its SKU is billed per thousand characters, not tokens, so it is money without tokens.
    assert result.metrics["provider_cost_rows"] == 1 and result.metrics["usage_rows"] == 0
    cost = wh.query(
        "SELECT usage_date, model, amount FROM `acme_dev.genai_payg_provider_costs`"
    ).to_pylist()
    assert cost == [{"usage_date": D2, "model": "gemini-2.5-flash", "amount": 0.42}]
    # It authenticated as the org's key (a JWT grant at the key's token_uri).
    assert len(token_server.assertions) > grants


def test_gemini_without_the_orgs_own_key_reads_nothing(
    wh: DuckDBWarehouse, credential: dict[str, Any]
) -> None:
    from processors.genai.payg_usage import PaygUsageProcessor

    keyless = {
        "billing_table": credential["billing_table"],
        "api_endpoint": credential["api_endpoint"],
    }
    ctx = step_context(wh, {"provider": "gemini"}, D1, D2, credential=keyless)
    with pytest.raises(TerminalError, match="the org's own service account"):
        PaygUsageProcessor().run(ctx)
    assert count_rows(wh, "acme", "genai_payg_usage_raw") == 0
