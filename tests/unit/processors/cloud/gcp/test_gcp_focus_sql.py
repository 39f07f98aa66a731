"""sp_focus_gcp on DuckDB: its DDL matches warehouse/schemas/gcp.py, raw rows map to FOCUS 1.3."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from processors.generic.procedure_executor import ProcedureExecutor
from tests.support.cloud import assert_focus_rows_valid, billed_total, focus_rows, money
from tests.support.genai import step_context
from warehouse.duckdb import DuckDBWarehouse
from warehouse.procedures import load_procedure
from warehouse.schemas import with_lineage
from warehouse.schemas.gcp import GCP_BILLING_EXPORT_RAW, GCP_SKU_PRICES, GCP_TABLE_SCHEMAS

D0, D1 = date(2026, 10, 1), date(2026, 10, 2)
PIPELINE = "cloud_gcp_billing"
_BQ_TYPES = {
    pa.string(): "STRING",
    pa.date32(): "DATE",
    pa.float64(): "FLOAT64",
    pa.timestamp("us", tz="UTC"): "TIMESTAMP",
}


@pytest.mark.parametrize("table", sorted(GCP_TABLE_SCHEMAS))
def test_the_procedure_creates_the_tables_as_schemas_gcp_defines_them(table: str) -> None:
    statements = load_procedure("sp_focus_gcp").statements
    (ddl,) = [s for s in statements if f"CREATE TABLE IF NOT EXISTS `{{dataset}}.{table}`" in s]
    code = "\n".join(line for line in ddl.splitlines() if not line.lstrip().startswith("--"))
    body = code.split("(", 1)[1].rsplit(")", 1)[0]
    declared = [line.strip().rstrip(",") for line in body.splitlines() if line.strip()]
    expected = [
        f"{f.name} {_BQ_TYPES[f.type]}{'' if f.nullable else ' NOT NULL'}"
        for f in with_lineage(GCP_TABLE_SCHEMAS[table])
    ]
    assert declared == expected


def raw_row(**values: Any) -> dict[str, Any]:
    start = values.pop("start", datetime(2026, 10, 1, 10, tzinfo=UTC))
    row: dict[str, Any] = {name: None for name in GCP_BILLING_EXPORT_RAW.names}
    row.update(
        usage_date=start.date(),
        record_type="charge",
        billing_account_id="01A2B3-C4D5E6-F7A8B9",
        invoice_month="202610",
        cost_type="regular",
        service_id="6F81-5844-456A",
        service_description="Compute Engine",
        sku_id="2E27-4F75-95CD",
        sku_description="N1 Predefined Instance Core running in Americas",
        usage_start_time=start,
        usage_end_time=start + timedelta(hours=1),
        project_id="acme-prod",
        project_name="Acme Prod",
        location_region="us-central1",
        export_time=start + timedelta(hours=6),
        cost=1.0,
        currency="USD",
        usage_amount=3600.0,
        usage_unit="seconds",
        usage_amount_in_pricing_units=1.0,
        usage_pricing_unit="hour",
        source_table="p.d.gcp_billing_export_v1_01A2B3_C4D5E6_F7A8B9",
    )
    row.update(values)
    return row


def credit(parent: dict[str, Any], amount: float, kind: str, **values: Any) -> dict[str, Any]:
    return {
        **parent,
        "record_type": "credit",
        "cost": amount,
        "credit_type": kind,
        "credit_name": kind.title(),
        "credit_id": f"id-{kind.lower()}",
        "credit_full_name": f"{kind.title()} credit",
        "usage_amount": None,
        "usage_amount_in_pricing_units": None,
        "cost_at_list": None,
        **values,
    }


def write(
    wh: DuckDBWarehouse,
    table: str,
    rows: list[dict[str, Any]],
    schema: pa.Schema,
    start: date,
    end: date,
    date_column: str,
    *,
    org: str = "acme",
    run_id: str = "run-1",
) -> None:
    ctx = step_context(wh, {}, start, end, org=org, pipeline_id=PIPELINE, run_id=run_id)
    ctx.write(table, pa.Table.from_pylist(rows, schema=schema), date_column=date_column)


def unify(
    wh: DuckDBWarehouse, start: date, end: date, *, org: str = "acme", run_id: str = "run-1"
) -> None:
    config = {"procedure": "sp_focus_gcp", "destination_table": "cost_data_standard_1_3"}
    ctx = step_context(wh, config, start, end, org=org, pipeline_id=PIPELINE, run_id=run_id)
    ProcedureExecutor().run(ctx)


def mapped_services() -> list[tuple[str, str, str]]:
    sql = (Path(__file__).resolve().parents[5] / "warehouse/sql/sp_focus_gcp.sql").read_text()
    return re.findall(
        r"SELECT '([^']+)'(?: AS service_description)?, '([^']+)'(?: AS \w+)?, '([^']+)'", sql
    )


def test_every_charge_kind_maps_to_valid_focus(tmp_path: Path) -> None:
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    services = mapped_services()
    assert len(services) >= 20 and ("BigQuery", "Databases", "Data Warehouses") in services
    usage = [
        raw_row(service_description=name, sku_id=f"sku-{i}")
        for i, (name, _, _) in enumerate(services)
    ]
    usage.append(raw_row(service_description="Cloud Quantum Foo", sku_id="sku-other"))
    cud = raw_row(sku_id="sku-cud", cost=10.0)
    late_night = datetime(2026, 10, 2, 23, tzinfo=UTC)
    rows = [
        *usage,
        cud,
        credit(cud, -3.0, "COMMITTED_USAGE_DISCOUNT"),
        credit(cud, -1.0, "COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE"),
        credit(cud, -0.5, "FREE_TIER"),
        credit(cud, -0.25, "SUSTAINED_USAGE_DISCOUNT"),
        raw_row(
            cost_type="tax", cost=0.7, sku_description="Tax", usage_amount=0.0, start=late_night
        ),
        raw_row(
            cost_type="adjustment",
            cost=-0.4,
            sku_description=None,
            adjustment_description="Goodwill",
        ),
        raw_row(cost_type="rounding error", cost=-0.01, sku_description="Rounding"),
        raw_row(invoice_month=None, sku_id="sku-no-invoice", start=late_night),
        raw_row(
            transaction_type="THIRD_PARTY_RESELLER",
            seller_name="Acme Marketplace Ltd",
            sku_id="sku-3p",
        ),
        raw_row(usage_amount_in_pricing_units=0.0, cost=0.0, sku_id="sku-free"),
    ]
    write(wh, "gcp_billing_export_raw", rows, GCP_BILLING_EXPORT_RAW, D0, D1, "usage_date")
    unify(wh, D0, D1)

    focus = focus_rows(wh, "acme", "gcp")
    assert len(focus) == len(rows)
    assert_focus_rows_valid(focus)
    assert billed_total(focus) == money(sum(r["cost"] for r in rows))
    by_sku = {r["SkuId"]: r for r in focus if r["ChargeCategory"] == "Usage"}
    for i, (_, category, subcategory) in enumerate(services):
        assert (
            by_sku[f"sku-{i}"]["ServiceCategory"],
            by_sku[f"sku-{i}"]["ServiceSubcategory"],
        ) == (
            category,
            subcategory,
        )
    assert (by_sku["sku-other"]["ServiceCategory"], by_sku["sku-other"]["ServiceSubcategory"]) == (
        "Other",
        "Other (Other)",
    )
    credits = {r["x_charge_type"]: r for r in focus if r["ChargeCategory"] == "Credit"}
    assert set(credits) == {
        "committed_usage_discount",
        "committed_usage_discount_dollar_base",
        "free_tier",
        "sustained_usage_discount",
    }
    for kind, category in (
        ("committed_usage_discount", "Usage"),
        ("committed_usage_discount_dollar_base", "Spend"),
    ):
        row = credits[kind]
        assert row["CommitmentDiscountCategory"] == category
        assert row["CommitmentDiscountId"] == f"id-{kind}"
        assert (row["CommitmentDiscountStatus"], row["CommitmentDiscountType"]) == (
            "Used",
            "Committed Use Discount",
        )
        assert (row["ListCost"], row["ContractedCost"]) == (0.0, 0.0)
        assert row["PricingQuantity"] is None and row["ConsumedQuantity"] is None
    for kind in ("free_tier", "sustained_usage_discount"):
        assert (
            credits[kind]["CommitmentDiscountId"] is None
            and credits[kind]["PricingCategory"] is None
        )
    tax = next(r for r in focus if r["ChargeCategory"] == "Tax")
    assert (tax["BilledCost"], tax["ListCost"], tax["ChargeFrequency"]) == (0.7, 0.7, "One-Time")
    assert tax["PricingQuantity"] is None and tax["PricingUnit"] is None
    assert tax["x_pipeline_run_date"] == D1  # 23:00 UTC on the 2nd
    adjustments = [r for r in focus if r["ChargeCategory"] == "Adjustment"]
    assert sorted(r["ChargeDescription"] for r in adjustments) == ["Goodwill", "Rounding"]
    no_invoice = by_sku["sku-no-invoice"]
    assert no_invoice["BillingPeriodStart"] == datetime(2026, 10, 1, tzinfo=UTC)
    assert (
        by_sku["sku-3p"]["PublisherName"]
        == by_sku["sku-3p"]["ServiceProviderName"]
        == ("Acme Marketplace Ltd")
    )
    assert by_sku["sku-3p"]["InvoiceIssuerName"] == "Google Cloud"
    free = by_sku["sku-free"]  # no quantity: unit prices are 0, never a division by zero
    assert (free["ListUnitPrice"], free["ContractedUnitPrice"]) == (0.0, 0.0)


def price(sku: str, unit_price: float, day: date, tier: float = 0.0) -> dict[str, Any]:
    row: dict[str, Any] = {name: None for name in GCP_SKU_PRICES.names}
    row.update(
        price_date=day,
        service_id="svc",
        sku_id=sku,
        tier_start_amount=tier,
        unit_price=unit_price,
        currency="USD",
    )
    return row


def test_list_cost_uses_cost_at_list_then_the_latest_catalog_price_then_cost(
    tmp_path: Path,
) -> None:
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    rows = [
        raw_row(sku_id="listed", cost=0.9, cost_at_list=1.2, usage_amount_in_pricing_units=4.0),
        raw_row(sku_id="priced", cost=0.9, usage_amount_in_pricing_units=4.0),
        raw_row(sku_id="priced", cost=0.9, usage_amount_in_pricing_units=4.0, currency="EUR"),
        raw_row(sku_id="unpriced", cost=0.9, usage_amount_in_pricing_units=4.0),
    ]
    write(wh, "gcp_billing_export_raw", rows, GCP_BILLING_EXPORT_RAW, D0, D0, "usage_date")
    write(
        wh,
        "gcp_sku_prices",
        [price("priced", 0.1, D0), price("listed", 9.0, D0)],
        GCP_SKU_PRICES,
        D0,
        D0,
        "price_date",
    )
    newer = [price("priced", 0.25, D1), price("priced", 0.2, D1, tier=100.0)]
    write(wh, "gcp_sku_prices", newer, GCP_SKU_PRICES, D1, D1, "price_date")
    unify(wh, D0, D0)
    got = {(r["SkuId"], r["BillingCurrency"]): r for r in focus_rows(wh, "acme", "gcp")}
    assert (got["listed", "USD"]["ListCost"], got["listed", "USD"]["x_price_status"]) == (
        1.2,
        "cost_at_list",
    )
    assert got["listed", "USD"]["ListUnitPrice"] == pytest.approx(0.3)
    assert got["priced", "USD"]["ListUnitPrice"] == 0.25  # latest snapshot, tier 0
    assert (got["priced", "USD"]["ListCost"], got["priced", "USD"]["x_price_status"]) == (
        1.0,
        "catalog",
    )
    assert got["priced", "EUR"]["x_price_status"] == "billed"  # no EUR price
    assert (got["unpriced", "USD"]["ListCost"], got["unpriced", "USD"]["x_price_status"]) == (
        0.9,
        "billed",
    )
    assert got["unpriced", "USD"]["ContractedUnitPrice"] == pytest.approx(0.225)


def test_a_fresh_org_converts_to_an_empty_slice(tmp_path: Path) -> None:
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    wh.ensure_dataset("acme_dev")  # bootstrap made it; nothing else ran
    unify(wh, D0, D1)
    assert focus_rows(wh, "acme", "gcp") == []


def test_dates_this_run_rewrote_are_rebuilt_and_nothing_else(tmp_path: Path) -> None:
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    before = date(2026, 9, 30)
    day = lambda d: datetime.combine(d, datetime.min.time(), tzinfo=UTC)  # noqa: E731
    write(
        wh,
        "gcp_billing_export_raw",
        [raw_row(start=day(before))],
        GCP_BILLING_EXPORT_RAW,
        before,
        before,
        "usage_date",
    )
    write(
        wh,
        "gcp_billing_export_raw",
        [raw_row(start=day(before), cost=5.0)],
        GCP_BILLING_EXPORT_RAW,
        before,
        before,
        "usage_date",
        org="globex",
    )
    unify(wh, before, before)
    unify(wh, before, before, org="globex")
    # A run for D1 whose extract (lookback) rewrote D0 as well: the unify rebuilds both.
    rows = [raw_row(start=day(D0), cost=2.0), raw_row(start=day(D1), cost=3.0)]
    write(
        wh,
        "gcp_billing_export_raw",
        rows,
        GCP_BILLING_EXPORT_RAW,
        D0,
        D1,
        "usage_date",
        run_id="run-9",
    )
    unify(wh, D1, D1, run_id="run-9")
    got = {
        (r["x_pipeline_run_date"], r["x_run_id"]): r["BilledCost"]
        for r in focus_rows(wh, "acme", "gcp")
    }
    assert got == {(before, "run-1"): 1.0, (D0, "run-9"): 2.0, (D1, "run-9"): 3.0}
    assert [r["BilledCost"] for r in focus_rows(wh, "globex", "gcp")] == [5.0]
