"""The Cloud Billing export as rows: table names, the SELECT that reads it, credit flattening.

Pure logic, no client: `export_query` builds the query for a table's actual schema (the
export grows over time, and the standard export lacks the detailed one's resource.* and
price.* fields, so absent fields become typed NULLs instead of failing the query), and
`flatten` turns the result into GCP_BILLING_EXPORT_RAW rows: one 'charge' row per export
row and one 'credit' row per element of its `credits` array.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from pipeline_ops_core.errors import TerminalError
from warehouse.bigquery import check_project
from warehouse.schemas.gcp import GCP_BILLING_EXPORT_RAW

PartitionFilter = Literal["partitiontime", "usage_start_time"]
PARTITION_FILTERS: tuple[str, ...] = ("partitiontime", "usage_start_time")

# gcp_billing_export_v1_<ACCOUNT> (standard) or gcp_billing_export_resource_v1_<ACCOUNT>
# (detailed); the account id's dashes become underscores in the table name.
_TABLE_RE = re.compile(
    r"^(?P<project>(?:[a-z][a-z0-9.-]*:)?[^.:`\s]+)\.(?P<dataset>[A-Za-z0-9_]{1,1024})\."
    r"(?P<table>gcp_billing_export_(?:resource_)?v1_[0-9A-F]{6}_[0-9A-F]{6}_[0-9A-F]{6})\Z"
)

# raw column <- export field path. Strings and floats are CAST so NUMERIC price fields and
# INTEGER-typed ids read the same everywhere.
_STRING, _FLOAT, _TIMESTAMP = "STRING", "FLOAT64", "TIMESTAMP"
SOURCE_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("billing_account_id", "billing_account_id", _STRING),
    ("invoice_month", "invoice.month", _STRING),
    ("cost_type", "cost_type", _STRING),
    ("service_id", "service.id", _STRING),
    ("service_description", "service.description", _STRING),
    ("sku_id", "sku.id", _STRING),
    ("sku_description", "sku.description", _STRING),
    ("usage_start_time", "usage_start_time", _TIMESTAMP),
    ("usage_end_time", "usage_end_time", _TIMESTAMP),
    ("project_id", "project.id", _STRING),
    ("project_number", "project.number", _STRING),
    ("project_name", "project.name", _STRING),
    ("location_location", "location.location", _STRING),
    ("location_country", "location.country", _STRING),
    ("location_region", "location.region", _STRING),
    ("location_zone", "location.zone", _STRING),
    ("export_time", "export_time", _TIMESTAMP),
    ("cost", "cost", _FLOAT),
    ("cost_at_list", "cost_at_list", _FLOAT),
    ("currency", "currency", _STRING),
    ("currency_conversion_rate", "currency_conversion_rate", _FLOAT),
    ("usage_amount", "usage.amount", _FLOAT),
    ("usage_unit", "usage.unit", _STRING),
    ("usage_amount_in_pricing_units", "usage.amount_in_pricing_units", _FLOAT),
    ("usage_pricing_unit", "usage.pricing_unit", _STRING),
    ("adjustment_id", "adjustment_info.id", _STRING),
    ("adjustment_description", "adjustment_info.description", _STRING),
    ("adjustment_mode", "adjustment_info.mode", _STRING),
    ("adjustment_type", "adjustment_info.type", _STRING),
    ("transaction_type", "transaction_type", _STRING),
    ("seller_name", "seller_name", _STRING),
    ("resource_name", "resource.name", _STRING),
    ("resource_global_name", "resource.global_name", _STRING),
    ("price_effective_price", "price.effective_price", _FLOAT),
    ("price_tier_start_amount", "price.tier_start_amount", _FLOAT),
    ("price_unit", "price.unit", _STRING),
    ("price_pricing_unit_quantity", "price.pricing_unit_quantity", _FLOAT),
)
# Without these it is not a billing export; reading on would only produce nonsense rows.
REQUIRED_FIELDS = ("usage_start_time", "usage_end_time", "export_time", "cost", "currency")
# On a credit row the parent's amounts would be counted twice by any SUM; units stay.
_CREDIT_NULLED = ("cost_at_list", "usage_amount", "usage_amount_in_pricing_units")


@dataclass(frozen=True)
class ExportTable:
    project: str
    dataset: str
    table: str

    @property
    def name(self) -> str:
        return f"{self.project}.{self.dataset}.{self.table}"


def parse_table_name(value: object) -> ExportTable:
    """`project.dataset.gcp_billing_export[_resource]_v1_<ACCOUNT>`, checked strictly.

    The name is spliced into SQL (tables can't be query parameters), so nothing but the
    documented export names passes.
    """
    text = value.strip() if isinstance(value, str) else ""
    match = _TABLE_RE.match(text)
    if not match:
        raise TerminalError(
            f"billing_table {value!r} is not a Cloud Billing export table: expected "
            "project.dataset.gcp_billing_export_v1_<ACCOUNT> or "
            "project.dataset.gcp_billing_export_resource_v1_<ACCOUNT> "
            "(ACCOUNT like 01A2B3_C4D5E6_F7A8B9)"
        )
    project = match.group("project")
    try:
        check_project(project)
    except TerminalError:
        raise TerminalError(f"billing_table {text!r}: invalid project id {project!r}") from None
    return ExportTable(project, match.group("dataset"), match.group("table"))


@dataclass(frozen=True)
class Window:
    """Usage dates [start, end] read, and the partition floor for _PARTITIONTIME pruning."""

    start: date
    end: date
    margin_days: int

    @property
    def start_ts(self) -> datetime:
        return datetime.combine(self.start, time(), tzinfo=UTC)

    @property
    def end_ts(self) -> datetime:  # exclusive
        return datetime.combine(self.end + timedelta(days=1), time(), tzinfo=UTC)

    @property
    def partition_floor(self) -> datetime:
        # A row is exported at or after its usage, so no partition before the window's
        # start (less a margin for the export's own day boundaries) can hold its rows.
        return self.start_ts - timedelta(days=self.margin_days)


def field_paths(schema: Sequence[Any]) -> dict[str, str]:
    """Dotted path -> mode (NULLABLE/REPEATED/...) of every field, RECORDs recursed."""
    out: dict[str, str] = {}

    def walk(fields: Sequence[Any], prefix: str) -> None:
        for f in fields:
            path = f"{prefix}{f.name}"
            out[path] = f.mode or "NULLABLE"
            if getattr(f, "fields", None):
                walk(f.fields, f"{path}.")

    walk(schema, "")
    return out


def export_query(
    table: ExportTable, schema: Sequence[Any], partition_filter: PartitionFilter
) -> str:
    """The SELECT for `table` given its BigQuery schema; values come as @start_ts, @end_ts
    and (partitiontime) @partition_floor."""
    paths = field_paths(schema)
    missing = [f for f in REQUIRED_FIELDS if f not in paths]
    if missing:
        raise TerminalError(
            f"table {table.name} does not look like a Cloud Billing export: "
            f"it lacks {', '.join(missing)}"
        )
    select = []
    for raw, path, kind in SOURCE_FIELDS:
        if path not in paths:
            select.append(f"CAST(NULL AS {kind}) AS {raw}")
        elif kind == _TIMESTAMP:
            select.append(f"{path} AS {raw}")
        else:
            select.append(f"CAST({path} AS {kind}) AS {raw}")
    for repeated in ("labels", "credits"):
        if paths.get(repeated) == "REPEATED":
            select.append(repeated)
    where = ["usage_start_time >= @start_ts", "usage_start_time < @end_ts"]
    if partition_filter == "partitiontime":
        where.insert(0, "_PARTITIONTIME >= @partition_floor")
    return (
        "SELECT\n  "
        + ",\n  ".join(select)
        + f"\nFROM `{table.name}`\nWHERE "
        + "\n  AND ".join(where)
    )


def flatten(result: pa.Table, source_table: str) -> pa.Table:
    """Query result -> GCP_BILLING_EXPORT_RAW rows: charges first, then one row per credit."""
    n = result.num_rows
    base: dict[str, pa.Array | pa.ChunkedArray] = {}
    selected = {raw for raw, _, _ in SOURCE_FIELDS}
    for field in GCP_BILLING_EXPORT_RAW:
        if field.name in selected and field.name in result.column_names:
            base[field.name] = pc.cast(result.column(field.name), field.type)
        else:
            base[field.name] = pa.nulls(n, field.type)
    base["usage_date"] = _utc_dates(base["usage_start_time"])
    base["labels"] = pa.array(_labels_json(_column_list(result, "labels")), pa.string())
    base["source_table"] = pa.array([source_table] * n, pa.string())
    base["record_type"] = pa.array(["charge"] * n, pa.string())
    charges = pa.table(base, schema=GCP_BILLING_EXPORT_RAW)
    credits = _credit_rows(charges, result)
    return pa.concat_tables([charges, credits]) if credits.num_rows else charges


def _credit_rows(charges: pa.Table, result: pa.Table) -> pa.Table:
    if "credits" not in result.column_names or result.num_rows == 0:
        return charges.slice(0, 0)
    column = result.column("credits").combine_chunks()
    parents = pc.list_parent_indices(column)
    elements = pc.list_flatten(column)
    rows = charges.take(parents)
    m = rows.num_rows
    struct_names = {elements.type.field(i).name for i in range(elements.type.num_fields)}

    def credit_field(name: str, kind: pa.DataType) -> pa.Array:
        if name in struct_names:
            return pc.cast(pc.struct_field(elements, name), kind)
        return pa.nulls(m, kind)

    replace = {
        "record_type": pa.array(["credit"] * m, pa.string()),
        "cost": credit_field("amount", pa.float64()),
        "credit_type": credit_field("type", pa.string()),
        "credit_name": credit_field("name", pa.string()),
        "credit_id": credit_field("id", pa.string()),
        "credit_full_name": credit_field("full_name", pa.string()),
        **{name: pa.nulls(m, pa.float64()) for name in _CREDIT_NULLED},
    }
    for name, values in replace.items():
        rows = rows.set_column(rows.schema.get_field_index(name), name, values)
    return rows


def _utc_dates(timestamps: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    if timestamps.null_count:
        raise TerminalError("billing export row without usage_start_time")
    # Through a naive (UTC) timestamp, so the date is the UTC one; no Python object per row.
    return pc.cast(pc.cast(timestamps, pa.timestamp("us")), pa.date32())


def _column_list(result: pa.Table, name: str) -> list[Any]:
    if name not in result.column_names:
        return [None] * result.num_rows
    return result.column(name).to_pylist()


def _labels_json(values: Iterable[Any]) -> list[str | None]:
    """[{key, value}, ...] per row -> '{"key": "value"}' (keys sorted), null when none."""
    out: list[str | None] = []
    for pairs in values:
        labels = {str(p["key"]): p.get("value") for p in pairs or [] if p and p.get("key")}
        out.append(json.dumps(labels, sort_keys=True) if labels else None)
    return out


def watermark(rows: pa.Table) -> datetime | None:
    """The newest export_time among the rows: how far the export had got when read."""
    if rows.num_rows == 0:
        return None
    value = pc.max(rows.column("export_time")).as_py()
    return value if isinstance(value, datetime) else None


def net_cost(rows: pa.Table) -> float:
    total = pc.sum(rows.column("cost")).as_py() if rows.num_rows else 0.0
    return float(total or 0.0)
