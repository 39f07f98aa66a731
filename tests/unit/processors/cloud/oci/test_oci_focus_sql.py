"""sp_focus_oci on DuckDB: OCI's FOCUS 1.0 / 1.0-preview values -> FOCUS 1.3, edge by edge."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from processors.cloud.exports.focus import normalize_focus_export
from tests.support.cloud import assert_focus_rows_valid, call_sp_focus, text_table
from tests.support.genai import step_context
from warehouse.duckdb import DuckDBWarehouse

OCT1, OCT2 = date(2026, 10, 1), date(2026, 10, 2)


def line(ref: str, day: date = OCT1, **extra: str | None) -> dict[str, str | None]:
    """A minimal OCI report line as read from CSV (all text)."""
    return {
        "oci_ReferenceNumber": ref,
        "ChargePeriodStart": f"{day.isoformat()}T00:00:00Z",
        "ChargePeriodEnd": f"{day.isoformat()}T01:00:00Z",
        "ChargeCategory": "Usage",
        "BilledCost": "1.25",
        "ServiceName": "COMPUTE",
        "ServiceCategory": "Compute",
        **extra,
    }


@pytest.fixture
def warehouse(tmp_path: Path) -> DuckDBWarehouse:
    return DuckDBWarehouse(tmp_path / "w.duckdb")


def convert(wh: DuckDBWarehouse, lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    ctx = step_context(wh, {}, OCT1, OCT2, pipeline_id="cloud_oci_billing")
    raw = normalize_focus_export(text_table(lines), source_file="FOCUS Reports/2026/10/02/r.csv.gz")
    ctx.write("oci_focus_report_raw", raw, date_column="charge_date")
    call_sp_focus(wh, "oci", OCT1, OCT2)
    rows = wh.query("SELECT * FROM `acme_dev.cost_data_standard_1_3`").to_pylist()
    assert_focus_rows_valid(rows)
    # ChargeDescription falls back to the service name; tests give each line a unique one.
    by_service = {r["ServiceName"]: r for r in rows}
    assert len(by_service) == len(rows)
    return by_service


def test_minimal_lines_get_every_mandatory_column(warehouse: DuckDBWarehouse) -> None:
    got = convert(warehouse, [line("R1")])["COMPUTE"]
    assert got["BilledCost"] == got["EffectiveCost"] == got["ListCost"] == 1.25
    assert got["ContractedCost"] == 1.25
    # No quantity in the file: one unit at the whole cost, so ListCost = price x quantity.
    assert (got["PricingQuantity"], got["PricingUnit"]) == (1, "Units")
    assert got["ListUnitPrice"] == got["ContractedUnitPrice"] == 1.25
    assert got["BillingAccountId"] == "oci:default" and got["BillingCurrency"] == "USD"
    assert str(got["BillingPeriodStart"])[:10] == "2026-10-01"
    assert str(got["BillingPeriodEnd"])[:10] == "2026-11-01"
    for name in (
        "ProviderName",
        "PublisherName",
        "InvoiceIssuerName",
        "ServiceProviderName",
        "HostProviderName",
    ):
        assert got[name] == "Oracle"
    assert got["ChargeDescription"] == "COMPUTE"
    assert (got["ChargeFrequency"], got["PricingCategory"]) == ("Usage-Based", "Standard")
    assert got["SubAccountId"] is None and got["SubAccountType"] is None


def test_preview_charge_categories_and_frequencies(warehouse: DuckDBWarehouse) -> None:
    got = convert(
        warehouse,
        [
            line("R1", ServiceName="a", ChargeCategory="Adjustment", ChargeSubcategory="Credit"),
            line("R2", ServiceName="b", ChargeCategory="Adjustment", ChargeSubcategory="Refund"),
            line("R3", ServiceName="c", ChargeCategory="usage"),
            line("R4", ServiceName="d", ChargeCategory="Purchase", ChargeFrequency="Usage-Based"),
            line("R5", ServiceName="e", ChargeCategory="Something new"),
            line("R6", ServiceName="f", ChargeClass="Correction"),
        ],
    )
    assert got["a"]["ChargeCategory"] == "Credit"
    assert got["b"]["ChargeCategory"] == "Adjustment"
    assert got["c"]["ChargeCategory"] == "Usage"
    # A Purchase must not be Usage-Based.
    assert (got["d"]["ChargeCategory"], got["d"]["ChargeFrequency"]) == ("Purchase", "One-Time")
    assert got["e"]["ChargeCategory"] == "Adjustment"
    assert got["f"]["ChargeClass"] == "Correction" and got["a"]["ChargeClass"] is None


def test_pricing_quantity_by_charge_category(warehouse: DuckDBWarehouse) -> None:
    qty = {"UsageQuantity": "3", "UsageUnit": "GB"}
    got = convert(
        warehouse,
        [
            line("R1", ServiceName="usage", **qty),
            line("R2", ServiceName="tax", ChargeCategory="Tax", **qty),
            line("R3", ServiceName="credit", ChargeCategory="Credit"),
            line("R4", ServiceName="credit with qty", ChargeCategory="Credit", **qty),
        ],
    )
    assert (got["usage"]["PricingQuantity"], got["usage"]["PricingUnit"]) == (3, "GB")
    # FOCUS: PricingQuantity and PricingUnit MUST be null on Tax rows.
    assert (got["tax"]["PricingQuantity"], got["tax"]["PricingUnit"]) == (None, None)
    assert (got["credit"]["PricingQuantity"], got["credit"]["PricingUnit"]) == (None, None)
    # FOCUS: PricingQuantity MUST be null when SkuPriceId is, as on a credit without one.
    assert got["credit with qty"]["PricingQuantity"] is None


def test_commitment_status_from_charge_subcategory(warehouse: DuckDBWarehouse) -> None:
    cd = {"CommitmentDiscountId": "ocid1.commitment", "BilledCost": "0", "EffectiveCost": "2"}
    got = convert(
        warehouse,
        [
            line("R1", ServiceName="used", ChargeSubcategory="Used Commitment", **cd),
            line("R2", ServiceName="unused", ChargeSubcategory="Unused Commitment", **cd),
            line("R3", ServiceName="plain", **cd),
            line("R4", ServiceName="explicit", CommitmentDiscountStatus="unused", **cd),
            line("R5", ServiceName="usage cd", CommitmentDiscountCategory="Usage", **cd),
            line("R6", ServiceName="none", ChargeSubcategory="Unused Commitment"),
            line("R7", ServiceName="buy", ChargeCategory="Purchase", **cd),
        ],
    )
    assert got["used"]["CommitmentDiscountStatus"] == "Used"
    assert got["unused"]["CommitmentDiscountStatus"] == "Unused"
    assert got["plain"]["CommitmentDiscountStatus"] == "Used"  # a Usage row that drew on it
    assert got["explicit"]["CommitmentDiscountStatus"] == "Unused"
    assert got["usage cd"]["CommitmentDiscountCategory"] == "Usage"
    assert got["used"]["CommitmentDiscountCategory"] == "Spend"
    assert got["used"]["PricingCategory"] == "Committed"
    assert got["used"]["EffectiveCost"] == 2.0 and got["used"]["BilledCost"] == 0
    # No commitment id: no commitment columns, whatever the subcategory says.
    assert got["none"]["CommitmentDiscountStatus"] is None
    assert got["none"]["CommitmentDiscountCategory"] is None
    # Buying the commitment is a Purchase: no Used/Unused status.
    assert got["buy"]["CommitmentDiscountStatus"] is None
    assert got["buy"]["PricingCategory"] == "Standard"


def test_service_categories_map_to_allowed_values(warehouse: DuckDBWarehouse) -> None:
    got = convert(
        warehouse,
        [
            line("R1", ServiceName="BLOCK_STORAGE", ServiceCategory="storage"),
            line("R2", ServiceName="MySQL HeatWave", ServiceCategory="Database"),
            line("R3", ServiceName="OKE Kubernetes Engine", ServiceCategory=None),
            line("R4", ServiceName="Oracle Cloud VMware Solution", ServiceCategory="VMware"),
            line("R5", ServiceName="NETWORK_LOAD_BALANCER", ServiceCategory="Network"),
            line(
                "R6",
                ServiceName="Streaming",
                ServiceCategory="Analytics",
                ServiceSubcategory="Streaming Analytics",
            ),
            line(
                "R7",
                ServiceName="Vault",
                ServiceCategory="Security",
                ServiceSubcategory="Not a FOCUS value",
            ),
            line("R8", ServiceName="Generative AI Agents", ServiceCategory=None),
        ],
    )
    pairs = {k: (v["ServiceCategory"], v["ServiceSubcategory"]) for k, v in got.items()}
    assert pairs == {
        "BLOCK_STORAGE": ("Storage", "Block Storage"),
        "MySQL HeatWave": ("Databases", "Relational Databases"),
        "OKE Kubernetes Engine": ("Compute", "Containers"),
        "Oracle Cloud VMware Solution": ("Other", "Other (Other)"),
        "NETWORK_LOAD_BALANCER": ("Networking", "Application Networking"),
        "Streaming": ("Analytics", "Streaming Analytics"),
        "Vault": ("Security", "Other (Security)"),
        "Generative AI Agents": ("AI and Machine Learning", "Generative AI"),
    }


def test_compartment_from_oci_columns(warehouse: DuckDBWarehouse) -> None:
    got = convert(
        warehouse,
        [
            line(
                "R1",
                oci_CompartmentId="ocid1.compartment.oc1..dev",
                oci_CompartmentName="dev",
            )
        ],
    )["COMPUTE"]
    assert (got["SubAccountId"], got["SubAccountName"], got["SubAccountType"]) == (
        "ocid1.compartment.oc1..dev",
        "dev",
        "Compartment",
    )
