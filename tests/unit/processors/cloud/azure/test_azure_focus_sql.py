"""sp_focus_azure on DuckDB: FocusCost raw rows -> FOCUS 1.3, its defaults and fallbacks."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from processors.cloud.exports.focus import normalize_focus_export
from tests.support.cloud import (
    FOCUS_EXPORT_SAMPLE,
    FOCUS_EXPORT_SAMPLE_BILLED,
    assert_focus_rows_valid,
    billed_total,
    call_sp_focus,
    convert_cloud,
    focus_rows,
    text_table,
    write_focus_export_sample,
)
from tests.support.genai import step_context
from warehouse import focus_values as fv
from warehouse.duckdb import DuckDBWarehouse
from warehouse.procedures import SQL_DIR

OCT1, OCT2 = date(2026, 10, 1), date(2026, 10, 2)
SQL = (SQL_DIR / "sp_focus_azure.sql").read_text()


def row(day: date, cost: str, **extra: Any) -> dict[str, Any]:
    base = {
        "BilledCost": cost,
        "EffectiveCost": cost,
        "ListCost": cost,
        "ContractedCost": cost,
        "BillingAccountId": "8611537",
        "BillingAccountName": "Acme EA",
        "BillingCurrency": "EUR",
        "BillingPeriodStart": "2026-10-01T00:00:00Z",
        "BillingPeriodEnd": "2026-11-01T00:00:00Z",
        "ChargeCategory": "Usage",
        "ChargeDescription": "a charge",
        "ChargeFrequency": "Usage-Based",
        "ChargePeriodStart": f"{day:%Y-%m-%d}T00:00:00Z",
        "ChargePeriodEnd": f"{day:%Y-%m-%d}T23:59:59Z",
        "PricingQuantity": "1",
        "PricingUnit": "1 Hour",
        "ProviderName": "Microsoft",
        "PublisherName": "Microsoft",
        "InvoiceIssuerName": "Microsoft",
        "ServiceName": "Virtual Machines",
        "ServiceCategory": "Compute",
        "ServiceSubcategory": "Virtual Machines",
    }
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


@pytest.fixture
def warehouse(tmp_path: Path) -> DuckDBWarehouse:
    return DuckDBWarehouse(tmp_path / "w.duckdb")


def load_raw(wh: DuckDBWarehouse, rows: list[dict[str, Any]], org: str = "acme") -> None:
    ctx = step_context(wh, {}, OCT1, OCT2, org=org, pipeline_id="cloud_azure_billing")
    raw = normalize_focus_export(text_table(rows), source_file="c/part_0_0001.csv.gz")
    ctx.write("azure_focus_export_raw", raw, date_column="charge_date")


def convert(wh: DuckDBWarehouse, org: str = "acme", run: str = "r1") -> list[dict[str, Any]]:
    call_sp_focus(wh, "azure", OCT1, OCT2, org=org, run_id=run)
    return wh.query(
        f"SELECT * FROM `{org}_dev.cost_data_standard_1_3` ORDER BY ChargePeriodStart, BilledCost"
    ).to_pylist()


def test_allowed_value_lists_match_focus_values() -> None:
    categories = re.search(r"IF\(\s*service_category IN \((.*?)\n\s*\),", SQL, re.S)
    pairs = re.search(r"'\|', r\.service_subcategory\) IN \((.*?)\n\s*\),", SQL, re.S)
    assert categories and pairs
    assert re.findall(r"'([^']+)'", categories.group(1)) == list(fv.SERVICE_CATEGORY)
    assert re.findall(r"'([^']+)'", pairs.group(1)) == [
        f"{c}|{s}" for c, subs in fv.SERVICE_SUBCATEGORY.items() for s in subs
    ]


def test_a_fresh_org_converts_to_nothing(warehouse: DuckDBWarehouse) -> None:
    warehouse.ensure_dataset("acme_dev")  # the extract step makes it; no raw table yet
    assert convert(warehouse) == []


def test_focus_1_2_preview_rows_pass_through(warehouse: DuckDBWarehouse) -> None:
    load_raw(
        warehouse,
        [
            row(OCT1, "1.50", PricingCategory="Standard", SubAccountId="/subscriptions/1"),
            row(OCT2, "2.25", ChargeClass="Correction", PricingCategory="Dynamic"),
        ],
    )
    first, second = convert(warehouse)
    assert_focus_rows_valid([first, second])
    assert (first["BilledCost"], first["BillingCurrency"], first["PricingCategory"]) == (
        1.5,
        "EUR",
        "Standard",
    )
    assert first["ChargePeriodEnd"] == datetime(2026, 10, 1, 23, 59, 59, tzinfo=UTC)
    assert first["SubAccountType"] == "Subscription"
    assert (first["ServiceCategory"], first["ServiceSubcategory"]) == (
        "Compute",
        "Virtual Machines",
    )
    assert (second["ChargeClass"], second["PricingCategory"]) == ("Correction", "Dynamic")
    assert first["x_provider_reported_cost"] == 1.5 and first["x_charge_type"] == "Usage"


def test_missing_values_get_focus_1_3_defaults(warehouse: DuckDBWarehouse) -> None:
    bare = row(
        OCT1,
        "3.00",
        ProviderName=None,
        PublisherName=None,
        InvoiceIssuerName=None,
        ServiceName=None,
        ServiceCategory="Containers",  # not a FOCUS category
        ServiceSubcategory="Kubernetes",
        BillingPeriodStart=None,
        BillingPeriodEnd=None,
        ChargePeriodEnd=None,
        ChargeDescription=None,
        ChargeFrequency=None,
        PricingQuantity=None,
        PricingUnit=None,
        ConsumedQuantity="4",
        ConsumedUnit="Hours",
        ListCost=None,
        ContractedCost=None,
        EffectiveCost=None,
        ChargeCategory="Refund",  # not a FOCUS ChargeCategory
    )
    [got] = convert_one(warehouse, bare)
    assert_focus_rows_valid([got])
    for column in (
        "ProviderName",
        "PublisherName",
        "InvoiceIssuerName",
        "HostProviderName",
        "ServiceProviderName",
    ):
        assert got[column] == "Microsoft", column
    assert got["ServiceName"] == "Azure Marketplace"
    assert (got["ServiceCategory"], got["ServiceSubcategory"]) == ("Other", "Other (Other)")
    assert got["BillingPeriodStart"] == datetime(2026, 10, 1, tzinfo=UTC)
    assert got["BillingPeriodEnd"] == datetime(2026, 11, 1, tzinfo=UTC)
    assert got["ChargePeriodEnd"] == datetime(2026, 10, 2, tzinfo=UTC)
    # An adjustment has no SKU price, so FOCUS wants no quantity or price on it.
    assert (got["PricingQuantity"], got["PricingUnit"], got["SkuPriceId"]) == (None, None, None)
    assert got["ListCost"] == got["ContractedCost"] == got["EffectiveCost"] == 3.0
    assert (got["ChargeCategory"], got["x_charge_type"]) == ("Adjustment", "Refund")
    assert got["ChargeDescription"] == "Azure Marketplace adjustment"
    assert got["ChargeFrequency"] is None  # Recommended; unknown for an adjustment


def test_usage_without_pricing_quantity_uses_the_consumed_one(warehouse: DuckDBWarehouse) -> None:
    usage = row(
        OCT1,
        "3.00",
        PricingQuantity=None,
        PricingUnit=None,
        ConsumedQuantity="4",
        ConsumedUnit="Hours",
        SkuId="DZH318Z0BQ4L",
    )
    [got] = convert_one(warehouse, usage)
    assert_focus_rows_valid([got])
    assert (got["PricingQuantity"], got["PricingUnit"]) == (4.0, "Hours")
    assert (got["PricingCategory"], got["SkuPriceId"]) == ("Standard", "DZH318Z0BQ4L/Hours")
    assert (got["ListUnitPrice"], got["ContractedUnitPrice"]) == (0.75, 0.75)


def convert_one(wh: DuckDBWarehouse, raw_row: dict[str, Any]) -> list[dict[str, Any]]:
    load_raw(wh, [raw_row])
    return convert(wh)


def test_subcategory_must_belong_to_its_category(warehouse: DuckDBWarehouse) -> None:
    load_raw(
        warehouse,
        [
            row(OCT1, "1", ServiceCategory="Storage", ServiceSubcategory="Virtual Machines"),
            row(OCT1, "2", ServiceCategory="Databases", ServiceSubcategory=None),
            row(OCT1, "3", ServiceName="", PublisherName="Contoso", ServiceCategory="Security"),
        ],
    )
    got = convert(warehouse)
    assert [(r["ServiceCategory"], r["ServiceSubcategory"]) for r in got] == [
        ("Storage", "Other (Storage)"),
        ("Databases", "Other (Databases)"),
        ("Security", "Other (Security)"),
    ]
    assert got[2]["ServiceName"] == "Contoso"


def test_commitment_discounts(warehouse: DuckDBWarehouse) -> None:
    ri, sp = "/reservations/r-1", "/savingsPlans/sp-1"
    load_raw(
        warehouse,
        [
            # FOCUS 1.0 values, and neither category nor type: a reservation.
            row(OCT1, "0", CommitmentDiscountId=ri, PricingCategory="Commitment-Based"),
            # Only the type says it is a savings plan.
            row(OCT1, "0.5", CommitmentDiscountId=sp, CommitmentDiscountType="Savings Plan"),
            row(
                OCT2,
                "0",
                CommitmentDiscountId=ri,
                CommitmentDiscountCategory="usage",
                CommitmentDiscountStatus="unused",
                EffectiveCost="0.75",
            ),
            row(
                OCT2,
                "120",
                ChargeCategory="Purchase",
                ChargeFrequency="Usage-Based",  # not allowed on a Purchase
                CommitmentDiscountId=ri,
                PricingCategory="On-Demand",
            ),
            row(OCT2, "5", CommitmentDiscountCategory="Usage", CommitmentDiscountStatus="Used"),
        ],
    )
    covered, plan, unused, plain, purchase = convert(warehouse)  # by date, then cost
    assert_focus_rows_valid([covered, plan, unused, purchase, plain])
    assert (covered["CommitmentDiscountCategory"], covered["CommitmentDiscountType"]) == (
        "Usage",
        "Reservation",
    )
    assert (covered["CommitmentDiscountStatus"], covered["PricingCategory"]) == (
        "Used",
        "Committed",
    )
    assert (plan["CommitmentDiscountCategory"], plan["CommitmentDiscountType"]) == (
        "Spend",
        "Savings Plan",
    )
    assert plan["PricingCategory"] == "Committed"  # no PricingCategory given, a commitment used
    assert (unused["CommitmentDiscountStatus"], unused["EffectiveCost"]) == ("Unused", 0.75)
    assert purchase["CommitmentDiscountStatus"] is None
    assert (purchase["ChargeFrequency"], purchase["PricingCategory"]) == ("One-Time", "Standard")
    # Commitment columns are null without a CommitmentDiscountId.
    assert plain["CommitmentDiscountCategory"] is None
    assert plain["CommitmentDiscountStatus"] is None


def test_other_orgs_and_dates_untouched(warehouse: DuckDBWarehouse) -> None:
    load_raw(warehouse, [row(OCT1, "1"), row(OCT2, "2")])
    load_raw(warehouse, [row(OCT1, "7")], org="globex")
    convert(warehouse, run="r1")
    convert(warehouse, org="globex", run="g1")
    again = convert(warehouse, run="r2")
    assert [(r["BilledCost"], r["x_run_id"]) for r in again] == [(1.0, "r2"), (2.0, "r2")]
    globex = warehouse.query("SELECT * FROM `globex_dev.cost_data_standard_1_3`").to_pylist()
    assert [(r["BilledCost"], r["x_run_id"]) for r in globex] == [(7.0, "g1")]


def test_shared_focus_export_sample(warehouse: DuckDBWarehouse) -> None:
    day = date(2026, 10, 5)
    write_focus_export_sample(warehouse, "azure_focus_export_raw")
    convert_cloud(warehouse, "azure", day, day)
    rows = focus_rows(warehouse, "acme", "azure")
    assert len(rows) == len(FOCUS_EXPORT_SAMPLE)
    assert_focus_rows_valid(rows)
    assert billed_total(rows) == FOCUS_EXPORT_SAMPLE_BILLED
    [tax] = [r for r in rows if r["ChargeCategory"] == "Tax"]
    assert tax["PricingQuantity"] is None and tax["PricingUnit"] is None
