"""The Cloud Billing export as rows: strict table names, the SELECT built, credits flattened."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pyarrow as pa
import pytest
from google.cloud.bigquery import SchemaField

from pipeline_ops_core.errors import TerminalError
from processors.cloud.gcp.export_rows import (
    Window,
    export_query,
    flatten,
    net_cost,
    parse_table_name,
    watermark,
)
from warehouse.schemas.gcp import GCP_BILLING_EXPORT_RAW

STANDARD = "acme-billing.billing_export.gcp_billing_export_v1_01A2B3_C4D5E6_F7A8B9"
DETAILED = "acme-billing.billing_export.gcp_billing_export_resource_v1_01A2B3_C4D5E6_F7A8B9"


def test_standard_and_detailed_export_names_parse() -> None:
    standard = parse_table_name(STANDARD)
    assert (standard.project, standard.dataset) == ("acme-billing", "billing_export")
    assert standard.name == STANDARD
    assert parse_table_name(f"  {DETAILED} ").name == DETAILED
    domain = parse_table_name(
        "example.com:acme-billing.ds.gcp_billing_export_v1_0A0B0C_0D0E0F_010203"
    )
    assert domain.project == "example.com:acme-billing"


@pytest.mark.parametrize(
    "name",
    [
        "billing_export.gcp_billing_export_v1_01A2B3_C4D5E6_F7A8B9",  # no project
        "acme-billing.billing_export.some_other_table",
        "acme-billing.billing_export.gcp_billing_export_v1_01a2b3_c4d5e6_f7a8b9",  # lower case
        "acme-billing.billing_export.gcp_billing_export_v1_01A2B3-C4D5E6-F7A8B9",  # dashes
        "acme-billing.billing_export.gcp_billing_export_focus_01A2B3_C4D5E6_F7A8B9",
        "acme-billing.billing`; DROP TABLE x; --.gcp_billing_export_v1_01A2B3_C4D5E6_F7A8B9",
        "acme-billing.billing_export.gcp_billing_export_v1_01A2B3_C4D5E6_F7A8B9 WHERE 1=1",
        "Acme_Billing.billing_export.gcp_billing_export_v1_01A2B3_C4D5E6_F7A8B9",  # bad project
        "",
        None,
    ],
)
def test_anything_else_is_refused_by_name(name: object) -> None:
    with pytest.raises(TerminalError, match="billing_table"):
        parse_table_name(name)


def export_schema(*, with_list_cost: bool = True, detailed: bool = False) -> list[SchemaField]:
    def record(name: str, *fields: str, mode: str = "NULLABLE") -> SchemaField:
        return SchemaField(name, "RECORD", mode, fields=[SchemaField(f, "STRING") for f in fields])

    schema = [
        SchemaField("billing_account_id", "STRING"),
        record("service", "id", "description"),
        record("sku", "id", "description"),
        SchemaField("usage_start_time", "TIMESTAMP"),
        SchemaField("usage_end_time", "TIMESTAMP"),
        record("project", "id", "number", "name"),
        record("labels", "key", "value", mode="REPEATED"),
        record("location", "location", "country", "region", "zone"),
        SchemaField("export_time", "TIMESTAMP"),
        SchemaField("cost", "FLOAT"),
        SchemaField("currency", "STRING"),
        SchemaField(
            "credits",
            "RECORD",
            "REPEATED",
            fields=[SchemaField("name", "STRING"), SchemaField("amount", "FLOAT")],
        ),
        record("invoice", "month"),
        SchemaField("cost_type", "STRING"),
    ]
    if with_list_cost:
        schema.append(SchemaField("cost_at_list", "FLOAT"))
    if detailed:
        schema.append(
            SchemaField("price", "RECORD", fields=[SchemaField("effective_price", "NUMERIC")])
        )
    return schema


def test_the_partitiontime_query_prunes_partitions_and_filters_usage_time() -> None:
    sql = export_query(parse_table_name(STANDARD), export_schema(), "partitiontime")
    assert f"FROM `{STANDARD}`" in sql
    assert sql.endswith(
        "WHERE _PARTITIONTIME >= @partition_floor\n"
        "  AND usage_start_time >= @start_ts\n"
        "  AND usage_start_time < @end_ts"
    )
    assert "CAST(service.id AS STRING) AS service_id" in sql
    assert "CAST(cost_at_list AS FLOAT64) AS cost_at_list" in sql
    assert "usage_start_time AS usage_start_time" in sql
    assert "\n  labels,\n  credits\n" in sql


def test_the_usage_start_time_query_has_no_partition_pseudo_column() -> None:
    sql = export_query(parse_table_name(STANDARD), export_schema(), "usage_start_time")
    assert "_PARTITIONTIME" not in sql
    assert sql.endswith("WHERE usage_start_time >= @start_ts\n  AND usage_start_time < @end_ts")


def test_fields_the_table_lacks_become_typed_nulls() -> None:
    sql = export_query(
        parse_table_name(DETAILED),
        export_schema(with_list_cost=False, detailed=True),
        "partitiontime",
    )
    assert "CAST(NULL AS FLOAT64) AS cost_at_list" in sql
    assert "CAST(NULL AS STRING) AS resource_name" in sql
    assert "CAST(NULL AS FLOAT64) AS usage_amount" in sql  # no usage record in this schema
    assert "CAST(price.effective_price AS FLOAT64) AS price_effective_price" in sql


def test_a_table_that_is_not_an_export_is_refused() -> None:
    schema = [f for f in export_schema() if f.name not in ("cost", "export_time")]
    with pytest.raises(TerminalError, match="does not look like a Cloud Billing export: it lacks "):
        export_query(parse_table_name(STANDARD), schema, "partitiontime")


def test_the_window_is_half_open_and_the_floor_has_the_margin() -> None:
    window = Window(date(2026, 10, 1), date(2026, 10, 2), margin_days=3)
    assert window.start_ts == datetime(2026, 10, 1, tzinfo=UTC)
    assert window.end_ts == datetime(2026, 10, 3, tzinfo=UTC)
    assert window.partition_floor == datetime(2026, 9, 28, tzinfo=UTC)


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def query_result() -> pa.Table:
    """What the export query returns: flat columns plus the labels and credits arrays."""
    credit = pa.struct([("name", pa.string()), ("amount", pa.float64()), ("type", pa.string())])
    label = pa.struct([("key", pa.string()), ("value", pa.string())])
    return pa.table(
        {
            "billing_account_id": ["A", "A", "A"],
            "cost_type": ["regular", "regular", "tax"],
            "service_id": ["S1", "S2", "S1"],
            "sku_id": ["K1", "K2", "K3"],
            "usage_start_time": pa.array(
                [ts("2026-10-01T23:00:00"), ts("2026-10-02T00:00:00"), ts("2026-10-02T00:00:00")],
                pa.timestamp("us", tz="UTC"),
            ),
            "export_time": pa.array(
                [ts("2026-10-02T04:00:00"), ts("2026-10-06T07:30:00"), ts("2026-10-03T01:00:00")],
                pa.timestamp("us", tz="UTC"),
            ),
            "cost": [10.0, 2.5, 0.75],
            "cost_at_list": [12.0, None, None],
            "currency": ["USD", "USD", "USD"],
            "usage_amount": [3600.0, 5.0, 0.0],
            "usage_amount_in_pricing_units": [1.0, 5.0, 0.0],
            "usage_pricing_unit": ["hour", "gibibyte", None],
            "labels": pa.array(
                [[{"key": "env", "value": "prod"}, {"key": "app", "value": "web"}], [], None],
                pa.list_(label),
            ),
            "credits": pa.array(
                [
                    [
                        {"name": "CUD", "amount": -3.0, "type": "COMMITTED_USAGE_DISCOUNT"},
                        {"name": "Free", "amount": -0.5, "type": "FREE_TIER"},
                    ],
                    [],
                    None,
                ],
                pa.list_(credit),
            ),
        }
    )


def test_flatten_adds_a_row_per_credit_so_the_sum_is_the_net_total() -> None:
    rows = flatten(query_result(), STANDARD)
    assert rows.schema == GCP_BILLING_EXPORT_RAW
    assert rows.num_rows == 5
    assert net_cost(rows) == pytest.approx(10.0 + 2.5 + 0.75 - 3.0 - 0.5)
    out = rows.to_pylist()
    charges = [r for r in out if r["record_type"] == "charge"]
    credits = [r for r in out if r["record_type"] == "credit"]
    assert [c["sku_id"] for c in charges] == ["K1", "K2", "K3"]
    assert [(c["credit_type"], c["credit_name"], c["cost"]) for c in credits] == [
        ("COMMITTED_USAGE_DISCOUNT", "CUD", -3.0),
        ("FREE_TIER", "Free", -0.5),
    ]
    for credit in credits:
        # The parent's identity and units stay; its amounts don't, so no SUM counts them twice.
        assert (credit["sku_id"], credit["usage_date"], credit["usage_pricing_unit"]) == (
            "K1",
            date(2026, 10, 1),
            "hour",
        )
        assert credit["usage_amount"] is None and credit["cost_at_list"] is None
        assert credit["credit_id"] is None and credit["credit_full_name"] is None  # not in struct
    # 23:00 on the 1st is the 1st (UTC), however late it ends.
    days = [c["usage_date"] for c in charges]
    assert days == [date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 2)]
    assert json.loads(charges[0]["labels"]) == {"app": "web", "env": "prod"}
    assert charges[1]["labels"] is None and charges[2]["labels"] is None
    assert {r["source_table"] for r in out} == {STANDARD}
    assert charges[2]["cost_type"] == "tax" and charges[0]["resource_name"] is None


def test_watermark_is_the_newest_export_time() -> None:
    rows = flatten(query_result(), STANDARD)
    assert watermark(rows) == datetime(2026, 10, 6, 7, 30, tzinfo=UTC)
    empty = flatten(query_result().slice(0, 0), STANDARD)
    assert empty.num_rows == 0 and watermark(empty) is None and net_cost(empty) == 0.0
