"""sp_focus_aws on DuckDB: FOCUS 1.2 raw rows -> FOCUS 1.3, defaults, allowed values, re-runs."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from processors.cloud.exports.focus import normalize_focus_export
from tests.support.cloud import call_sp_focus
from tests.support.genai import step_context
from warehouse.duckdb import DuckDBWarehouse

OCT1, OCT2 = date(2026, 10, 1), date(2026, 10, 2)


def focus12(rows: list[dict[str, Any]]) -> pa.Table:
    """A FOCUS 1.2 table as AWS would type it: the columns the rows name, nulls elsewhere."""
    names = sorted({k for r in rows for k in r})
    return pa.table({n: [r.get(n) for r in rows] for n in names})


def row(day: date, cost: float, **extra: Any) -> dict[str, Any]:
    return {
        "BilledCost": cost,
        "EffectiveCost": cost,
        "ListCost": cost,
        "ContractedCost": cost,
        "BillingAccountId": "111122223333",
        "BillingAccountName": "acme-payer",
        "BillingCurrency": "USD",
        "BillingPeriodStart": datetime(2026, 10, 1, tzinfo=UTC),
        "BillingPeriodEnd": datetime(2026, 11, 1, tzinfo=UTC),
        "ChargeCategory": "Usage",
        "ChargeDescription": "a charge",
        "ChargePeriodStart": datetime(day.year, day.month, day.day, tzinfo=UTC),
        "ChargePeriodEnd": datetime(day.year, day.month, day.day, 1, tzinfo=UTC),
        "PricingQuantity": 1.0,
        "PricingUnit": "Hrs",
        "ProviderName": "AWS",
        "PublisherName": "AWS",
        "InvoiceIssuerName": "AWS",
        "ServiceName": "Amazon Elastic Compute Cloud",
        "ServiceCategory": "Compute",
        "ServiceSubcategory": "Virtual Machines",
        **extra,
    }


@pytest.fixture
def warehouse(tmp_path: Path) -> DuckDBWarehouse:
    return DuckDBWarehouse(tmp_path / "w.duckdb")


def load_raw(wh: DuckDBWarehouse, rows: list[dict[str, Any]], org: str = "acme") -> None:
    ctx = step_context(wh, {}, OCT1, OCT2, org=org, pipeline_id="cloud_aws_billing")
    raw = normalize_focus_export(focus12(rows), source_file="f.parquet")
    ctx.write("aws_focus_export_raw", raw, date_column="charge_date")


def convert(
    wh: DuckDBWarehouse, start: date = OCT1, end: date = OCT2, org: str = "acme", run: str = "r1"
) -> list[dict[str, Any]]:
    call_sp_focus(wh, "aws", start, end, org=org, run_id=run)
    return wh.query(
        f"SELECT * FROM `{org}_dev.cost_data_standard_1_3` ORDER BY ChargePeriodStart, BilledCost"
    ).to_pylist()


def test_service_categories_are_kept_when_allowed_else_other(warehouse: DuckDBWarehouse) -> None:
    load_raw(
        warehouse,
        [
            row(OCT1, 1.0),
            row(OCT1, 2.0, ServiceCategory="Compute", ServiceSubcategory="Generative AI"),
            row(OCT1, 3.0, ServiceCategory="Quantum Stuff", ServiceSubcategory="Qubits"),
            row(OCT1, 4.0, ServiceCategory=None, ServiceSubcategory=None),
            row(OCT1, 5.0, ServiceCategory="Storage", ServiceSubcategory=None),
            row(OCT1, 6.0, ServiceCategory="Storage", ServiceSubcategory="Other (Storage)"),
            row(OCT1, 7.0, ServiceCategory="AI and Machine Learning", ServiceSubcategory="Bots"),
        ],
    )
    got = [(r["ServiceCategory"], r["ServiceSubcategory"]) for r in convert(warehouse)]
    assert got == [
        ("Compute", "Virtual Machines"),
        ("Compute", "Other (Compute)"),
        ("Other", "Other (Other)"),
        ("Other", "Other (Other)"),
        ("Storage", "Other (Storage)"),
        ("Storage", "Other (Storage)"),
        ("AI and Machine Learning", "Bots"),
    ]


def test_provider_names_default_and_tax_rows_have_no_pricing_quantity(
    warehouse: DuckDBWarehouse,
) -> None:
    load_raw(
        warehouse,
        [
            row(OCT1, 1.0, InvoiceIssuerName=None, PublisherName=None, SubAccountId="444455556666"),
            row(
                OCT2,
                0.5,
                ChargeCategory="Tax",
                PricingQuantity=3.0,  # FOCUS: MUST be null on Tax rows
                PricingUnit="Hrs",
                ListUnitPrice=None,
                ContractedCost=None,
                ChargeFrequency="Usage-Based",
            ),
        ],
    )
    usage, tax = convert(warehouse)
    assert usage["InvoiceIssuerName"] == "Amazon Web Services"
    assert usage["PublisherName"] == "AWS"  # falls back to ProviderName first
    assert usage["ProviderName"] == usage["HostProviderName"] == "AWS"
    assert usage["ServiceProviderName"] == "AWS"
    assert usage["SubAccountType"] == "Account"
    assert usage["BillingAccountType"] == "Billing Account"
    assert (usage["PricingQuantity"], usage["PricingUnit"]) == (1.0, "Hrs")
    assert tax["ChargeCategory"] == "Tax"
    assert tax["PricingQuantity"] is None and tax["PricingUnit"] is None
    assert tax["SubAccountId"] is None and tax["SubAccountType"] is None
    assert tax["ListUnitPrice"] is None  # Conditional: AWS's null is kept
    assert tax["ContractedCost"] == 0.5  # Mandatory: falls back to BilledCost
    assert tax["x_provider"] == "aws" and tax["x_source"] == "aws_focus_1_2_export"
    assert tax["x_pipeline_run_date"] == OCT2


def test_without_any_provider_column_the_names_are_amazon_web_services(
    warehouse: DuckDBWarehouse,
) -> None:
    load_raw(warehouse, [row(OCT1, 1.0, ProviderName=None, PublisherName=None)])
    (got,) = convert(warehouse)
    names = ("ProviderName", "PublisherName", "HostProviderName", "ServiceProviderName")
    assert {got[n] for n in names} == {"Amazon Web Services"}


def test_rerun_of_one_day_replaces_that_day_only(warehouse: DuckDBWarehouse) -> None:
    load_raw(warehouse, [row(OCT1, 1.0), row(OCT2, 2.0)])
    assert len(convert(warehouse)) == 2
    again = convert(warehouse, OCT2, OCT2, run="r2")
    assert [(r["BilledCost"], r["x_run_id"]) for r in again] == [(1.0, "r1"), (2.0, "r2")]
    assert len(convert(warehouse, run="r3")) == 2
