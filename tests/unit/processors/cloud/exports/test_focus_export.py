"""normalize_focus_export: any FOCUS version's columns into FOCUS_EXPORT_RAW, typed."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pyarrow as pa
import pytest

from pipeline_ops_core.errors import TerminalError
from processors.cloud.exports.focus import normalize_focus_export, rows_in_dates
from warehouse.schemas.cloud import FOCUS_EXPORT_RAW, snake_case


def test_snake_case_of_focus_names() -> None:
    assert snake_case("SkuPriceId") == "sku_price_id"
    assert snake_case("PricingCurrencyEffectiveCost") == "pricing_currency_effective_cost"
    assert snake_case("BilledCost") == "billed_cost"


def test_focus_1_0_preview_names_text_values_and_extensions() -> None:
    table = pa.table(
        {
            "BilledCost": ["1.25", "-0.25"],
            "ChargePeriodStart": ["2026-10-01T23:30:00Z", "2026-10-02"],
            "Provider": ["Oracle", "Oracle"],
            "Region": ["us-ashburn-1", None],
            "UsageQuantity": ["3", None],
            "oci_ReferenceNumber": ["r1", None],
            "ChargeSubcategory": ["On-Demand", "Credit"],
        }
    )
    out = normalize_focus_export(table, source_file="FOCUS Reports/2026/10/02/1.csv.gz")
    assert out.schema == FOCUS_EXPORT_RAW
    first, second = out.to_pylist()
    assert first["billed_cost"] == 1.25 and second["billed_cost"] == -0.25
    assert first["charge_period_start"] == datetime(2026, 10, 1, 23, 30, tzinfo=UTC)
    assert [first["charge_date"], second["charge_date"]] == [date(2026, 10, 1), date(2026, 10, 2)]
    assert first["provider_name"] == first["service_provider_name"] == "Oracle"
    assert first["host_provider_name"] == "Oracle"
    assert first["region_name"] == first["region_id"] == "us-ashburn-1"
    assert first["consumed_quantity"] == 3.0
    assert json.loads(first["x_extensions"]) == {
        "oci_ReferenceNumber": "r1",
        "ChargeSubcategory": "On-Demand",
    }
    assert json.loads(second["x_extensions"]) == {"ChargeSubcategory": "Credit"}
    assert first["x_source_file"] == "FOCUS Reports/2026/10/02/1.csv.gz"
    assert first["effective_cost"] is None  # absent columns are null, not zero


def test_parquet_types_maps_and_1_2_names() -> None:
    table = pa.table(
        {
            "BilledCost": pa.array([2.5], pa.float64()),
            "ChargePeriodStart": pa.array([datetime(2026, 10, 3, 5)], pa.timestamp("ms")),
            "ServiceProviderName": ["Amazon Web Services"],
            "ProviderName": ["AWS"],
            "Tags": pa.array([[("team", "a")]], pa.map_(pa.string(), pa.string())),
            "x_Discounts": pa.array([[("sp", -1.0)]], pa.map_(pa.string(), pa.float64())),
        }
    )
    (row,) = normalize_focus_export(table, source_file="f.parquet").to_pylist()
    assert row["charge_date"] == date(2026, 10, 3)
    # An explicit ServiceProviderName wins over the 1.2 ProviderName fill.
    assert row["service_provider_name"] == "Amazon Web Services"
    assert json.loads(row["tags"]) == {"team": "a"}
    assert json.loads(row["x_extensions"]) == {"x_Discounts": {"sp": -1.0}}


def test_renames_and_date_filter() -> None:
    table = pa.table(
        {"Cost": ["1", "2", "3"], "ChargePeriodStart": ["2026-10-01", "2026-10-02", "2026-10-03"]}
    )
    out = normalize_focus_export(table, source_file="f", renames={"Cost": "billed_cost"})
    kept = rows_in_dates(out, date(2026, 10, 2), date(2026, 10, 3))
    assert kept.column("billed_cost").to_pylist() == [2.0, 3.0]


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"BilledCost": ["1"]}, "f.csv: no ChargePeriodStart column"),
        ({"ChargePeriodStart": [None], "BilledCost": ["1"]}, "1 rows have no ChargePeriodStart"),
        ({"ChargePeriodStart": ["yesterday"]}, "'yesterday' is not a date/time"),
        ({"ChargePeriodStart": ["2026-10-01"], "BilledCost": ["ten"]}, "BilledCost: not a number"),
    ],
)
def test_bad_rows_fail_clearly(columns: dict, message: str) -> None:
    table = pa.table({k: pa.array(v, pa.string()) for k, v in columns.items()})
    with pytest.raises(TerminalError) as info:
        normalize_focus_export(table, source_file="f.csv")
    assert message in str(info.value)


def test_blank_text_in_a_number_column_is_null() -> None:
    table = pa.table({"ChargePeriodStart": ["2026-10-01"] * 2, "ListCost": ["", " 2.5"]})
    out = normalize_focus_export(table, source_file="p.parquet")
    assert out.column("list_cost").to_pylist() == [None, 2.5]


def test_extension_values_are_escaped_json_and_blank_ones_left_out() -> None:
    table = pa.table(
        {
            "ChargePeriodStart": ["2026-10-01"] * 3,
            "x_Text": ['say "hi"\\ now\n\tdone\x01', "", None],
            "x_Number": pa.array([1.5, float("nan"), None]),
            "x_Flag": pa.array([True, None, False]),
            "x_Count": pa.array([3, None, None], pa.int64()),
        }
    )
    first, second, third = normalize_focus_export(table, source_file="f").column("x_extensions")
    assert json.loads(first.as_py()) == {
        "x_Count": 3,
        "x_Flag": True,
        "x_Number": 1.5,
        "x_Text": 'say "hi"\\ now\n\tdone ',
    }
    assert second.as_py() is None  # "", NaN and nulls are no values
    assert json.loads(third.as_py()) == {"x_Flag": False}


def test_an_empty_tags_map_is_an_empty_json_object_not_a_list() -> None:
    # AWS Parquet exports carry an empty map<string,string> on untagged rows. FOCUS wants a
    # JSON object (or null) in Tags: the Arrow type decides, not what the value looks like.
    table = pa.table(
        {
            "ChargePeriodStart": pa.array([datetime(2026, 10, 3)] * 3, pa.timestamp("ms")),
            "Tags": pa.array([[], [("team", "a")], None], pa.map_(pa.string(), pa.string())),
            "x_Discounts": pa.array([[], [("sp", -1.0)], None], pa.map_(pa.string(), pa.float64())),
        }
    )
    rows = normalize_focus_export(table, source_file="f.parquet").to_pylist()
    assert [r["tags"] for r in rows] == ["{}", '{"team": "a"}', None]
    assert [json.loads(r["x_extensions"] or "null") for r in rows] == [
        {"x_Discounts": {}},
        {"x_Discounts": {"sp": -1.0}},
        None,
    ]


def test_a_list_column_stays_a_json_list() -> None:
    table = pa.table(
        {
            "ChargePeriodStart": ["2026-10-03"],
            "x_Labels": pa.array([[]], pa.list_(pa.string())),
        }
    )
    (row,) = normalize_focus_export(table, source_file="f.parquet").to_pylist()
    assert json.loads(row["x_extensions"]) == {"x_Labels": []}
