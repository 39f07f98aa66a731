"""sp_convert_to_focus: the shape of cost_data_standard_1_3, per-row allowed values, idempotency."""

from __future__ import annotations

import csv

import pyarrow as pa
import pytest

from tests.support.genai import DAY1, DAY2, FOCUS_DATA, convert, fill_focus
from warehouse import focus_values as fv
from warehouse.base import LINEAGE_NAMES, TableRef
from warehouse.duckdb import DuckDBWarehouse, duckdb_type
from warehouse.schemas import FOCUS_TABLE_SCHEMAS, TABLE_SCHEMAS, with_lineage

TABLE = "`acme_dev.cost_data_standard_1_3`"
REFERENCE = list(csv.DictReader((FOCUS_DATA / "focus_1_3_columns.csv").open()))
ARROW_OF = {"String": pa.string(), "Decimal": pa.float64(), "JSON": pa.string()}


def rows(warehouse: DuckDBWarehouse) -> list[dict]:
    return warehouse.query(f"SELECT * FROM {TABLE}").to_pylist()


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> DuckDBWarehouse:
    warehouse = DuckDBWarehouse(tmp_path_factory.mktemp("focus") / "warehouse.duckdb")
    fill_focus(warehouse)
    return warehouse


def test_columns_equal_the_reference_list_with_types(filled: DuckDBWarehouse) -> None:
    schema = filled.table_schema(TableRef("acme_dev", "cost_data_standard_1_3"))
    assert schema is not None
    focus = [name for name in schema.names if not name.startswith("x_")]
    assert focus == [r["column"] for r in REFERENCE]
    assert len(focus) == 65
    for ref in REFERENCE:
        got = schema.field(ref["column"]).type
        if ref["type"] == "Date/Time":
            assert pa.types.is_timestamp(got) and got.tz == "UTC", ref["column"]
        else:
            assert got == ARROW_OF[ref["type"]], ref["column"]
    assert set(LINEAGE_NAMES) <= set(schema.names)
    # Every other column is an x_ extension, as FOCUS requires of custom columns.
    assert all(n.startswith("x_") for n in schema.names if n not in focus)
    # The procedure creates exactly the declared schema, and its source tables exactly what
    # bootstrap (TABLE_SCHEMAS) would.
    expected = with_lineage(FOCUS_TABLE_SCHEMAS["cost_data_standard_1_3"])
    assert [(f.name, duckdb_type(f)) for f in schema] == [
        (f.name, duckdb_type(f)) for f in expected
    ]
    for name in ("genai_payg_costs", "subscription_costs_daily"):
        made = filled.table_schema(TableRef("acme_dev", name))
        assert made is not None
        assert [(f.name, duckdb_type(f)) for f in made] == [
            (f.name, duckdb_type(f)) for f in with_lineage(TABLE_SCHEMAS[name])
        ]


def test_mandatory_columns_have_no_nulls(filled: DuckDBWarehouse) -> None:
    data = rows(filled)
    assert len(data) > 20
    mandatory = [r["column"] for r in REFERENCE if r["required"] == "Mandatory"]
    # ChargeClass is Mandatory as a column but null unless a row is a correction.
    for column in (c for c in mandatory if c != "ChargeClass"):
        nulls = [r for r in data if r[column] is None]
        assert not nulls, f"{column} is null in {len(nulls)} rows"
    # Recommended ones we fill for every row.
    for column in ("ChargeFrequency", "ServiceSubcategory"):
        assert all(r[column] is not None for r in data), column


def test_every_row_uses_allowed_values(filled: DuckDBWarehouse) -> None:
    for r in rows(filled):
        assert r["ChargeCategory"] in fv.CHARGE_CATEGORY
        assert r["ChargeClass"] is None or r["ChargeClass"] in fv.CHARGE_CLASS
        assert r["ChargeFrequency"] in fv.CHARGE_FREQUENCY
        assert r["PricingCategory"] is None or r["PricingCategory"] in fv.PRICING_CATEGORY
        assert r["ServiceCategory"] in fv.SERVICE_CATEGORY
        assert r["ServiceSubcategory"] in fv.SERVICE_SUBCATEGORY[r["ServiceCategory"]]
        assert r["CommitmentDiscountStatus"] is None
        assert r["CapacityReservationStatus"] is None
        assert not (r["ChargeCategory"] == "Purchase" and r["ChargeFrequency"] == "Usage-Based")
        assert r["BillingCurrency"] == "USD"
        # The cost identities FOCUS checks, row by row.
        assert r["ListUnitPrice"] * r["PricingQuantity"] == pytest.approx(r["ListCost"])
        assert r["ContractedUnitPrice"] * r["PricingQuantity"] == pytest.approx(r["ContractedCost"])
        assert r["ChargePeriodStart"] < r["ChargePeriodEnd"]
        assert r["BillingPeriodStart"] <= r["ChargePeriodStart"] < r["BillingPeriodEnd"]


def test_llm_and_subscription_rows(filled: DuckDBWarehouse) -> None:
    data = rows(filled)
    llm = [r for r in data if r["x_source"] == "genai_payg"]
    assert {r["x_provider"] for r in llm} == {"openai", "anthropic"}
    for r in llm:
        assert (r["ServiceCategory"], r["ServiceSubcategory"]) == (
            "AI and Machine Learning",
            "Generative AI",
        )
        assert (r["ChargeCategory"], r["ChargeFrequency"]) == ("Usage", "Usage-Based")
        assert r["ConsumedUnit"] == r["PricingUnit"]
        assert r["ConsumedQuantity"] == r["PricingQuantity"]
    tokens = {r["ConsumedUnit"] for r in llm}
    assert tokens == {"Tokens", "Requests"}  # requests: Anthropic web searches
    sonnet = [
        r
        for r in llm
        if r["x_model"] == "claude-sonnet-4-6" and r["ChargePeriodStart"].date() == DAY1
    ]
    assert sum(r["ConsumedQuantity"] for r in sonnet if r["ConsumedUnit"] == "Tokens") == 940_000
    unpriced = [r for r in llm if r["x_model"] == "acme-private-llm"]
    assert unpriced and all(r["x_price_status"] == "unpriced" for r in unpriced)
    # Provider-reported money is what was billed.
    mini_input = [r for r in llm if r["x_provider_reported_cost"] is not None]
    assert all(r["BilledCost"] == r["x_provider_reported_cost"] for r in mini_input)

    subs = [r for r in data if r["x_source"] == "saas_subscription"]
    assert subs and all(r["x_provider"] == "subscription" for r in subs)
    for r in subs:
        assert (r["ChargeCategory"], r["ChargeFrequency"]) == ("Purchase", "Recurring")
        assert r["ConsumedQuantity"] is None and r["ConsumedUnit"] is None
    team = {r["ChargePeriodStart"].date(): r for r in subs if r["ResourceId"] == "sub_team"}
    # 10 seats x $30, cycle 2026-02-15..2026-03-15 (28 days): amortized 300/28 a day.
    assert team[DAY1]["EffectiveCost"] == pytest.approx(300 / 28)
    assert team[DAY1]["BilledCost"] == 0
    slack = {r["ChargePeriodStart"].date(): r for r in subs if r["ResourceId"] == "sub_slack"}
    # Annual, starting 2026-03-01: the invoice (4 x 150) lands on its first day.
    assert slack[DAY1]["BilledCost"] == pytest.approx(600)
    assert slack[DAY2]["BilledCost"] == 0
    assert slack[DAY1]["ServiceCategory"] == "Business Applications"


def totals(warehouse: DuckDBWarehouse) -> list[dict]:
    return warehouse.query(
        f"SELECT x_provider, COUNT(*) AS n, ROUND(SUM(BilledCost), 9) AS billed, "
        f"ROUND(SUM(EffectiveCost), 9) AS effective, ROUND(SUM(ListCost), 9) AS list "
        f"FROM {TABLE} GROUP BY x_provider ORDER BY x_provider"
    ).to_pylist()


def test_rerunning_a_day_changes_no_totals_and_adds_no_rows(filled: DuckDBWarehouse) -> None:
    before = totals(filled)
    convert(filled, "openai", DAY1, DAY1, run_id="again-1")
    convert(filled, "all", DAY1, DAY2, run_id="again-2")
    convert(filled, "subscription", DAY2, DAY2, run_id="again-3")
    assert totals(filled) == before
    # Converting one provider's day leaves other providers and days alone.
    convert(filled, "anthropic", DAY2, DAY2, run_id="only-anthropic")
    data = rows(filled)
    assert {r["x_run_id"] for r in data if r["x_provider"] == "anthropic"
            and r["x_pipeline_run_date"] == DAY2} == {"only-anthropic"}  # fmt: skip
    assert all(r["x_run_id"] != "only-anthropic" for r in data if r["x_provider"] != "anthropic")
