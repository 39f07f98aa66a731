"""FOCUS-format export rows (any FOCUS version) -> the FOCUS_EXPORT_RAW layout.

AWS delivers FOCUS 1.2, Azure 1.0 / 1.0r2 / 1.2-preview and OCI 1.0 with some 1.0-preview
names. Column names are matched without regard to case; older names are renamed to their
1.3 successors; every column FOCUS doesn't define (x_*, oci_*, ChargeSubcategory, ...) is
kept per row in `x_extensions` as JSON, so nothing the cloud said is lost. Values are typed
here, once, whatever the file format gave: costs and quantities float64, dates UTC
timestamps, everything else text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline_ops_core.errors import TerminalError
from warehouse.schemas.cloud import FOCUS_EXPORT_RAW, FOCUS_RAW_NAMES, snake_case

# Pre-1.3 names (FOCUS 1.0 and the 1.0-preview) -> raw column.
BUILTIN_RENAMES: dict[str, str] = {
    "provider": "provider_name",
    "publisher": "publisher_name",
    "invoiceissuer": "invoice_issuer_name",
    "region": "region_name",
    "usagequantity": "consumed_quantity",
    "usageunit": "consumed_unit",
    "amortizedcost": "effective_cost",
}
# 1.3 split ProviderName into ServiceProviderName and HostProviderName; older files fill both.
_FILLS_WHEN_ABSENT: dict[str, tuple[str, ...]] = {
    "provider_name": ("service_provider_name", "host_provider_name"),
    "region_name": ("region_id",),
}
_RAW_COLUMNS = {snake: snake for snake in FOCUS_RAW_NAMES.values()}
_BY_LOWER = {name.lower(): snake for name, snake in FOCUS_RAW_NAMES.items()} | {
    snake.replace("_", ""): snake for snake in FOCUS_RAW_NAMES.values()
}
_DERIVED = ("charge_date", "x_extensions", "x_source_file")


def raw_column_for(name: str, renames: Mapping[str, str]) -> str | None:
    """The FOCUS_EXPORT_RAW column a source column fills, or None for an extension."""
    if name in renames:
        return renames[name]
    key = name.lower().replace("_", "")
    if name.lower().startswith(("x_", "oci_")):
        return None
    return BUILTIN_RENAMES.get(key) or _BY_LOWER.get(key) or _RAW_COLUMNS.get(snake_case(name))


def normalize_focus_export(
    table: pa.Table, *, source_file: str, renames: Mapping[str, str] | None = None
) -> pa.Table:
    renames = dict(renames or {})
    bad = sorted({v for v in renames.values() if v not in FOCUS_EXPORT_RAW.names})
    if bad:
        raise TerminalError(f"renames target unknown raw columns: {', '.join(bad)}")
    filled: dict[str, pa.ChunkedArray] = {}
    extensions: list[str] = []
    for name in table.column_names:
        target = raw_column_for(name, renames)
        if target is None or target in _DERIVED or target in filled:
            extensions.append(name)
            continue
        filled[target] = _typed(table.column(name), FOCUS_EXPORT_RAW.field(target).type, name)
    for source, targets in _FILLS_WHEN_ABSENT.items():
        for target in targets:
            if source in filled and target not in filled:
                filled[target] = filled[source]
    rows = table.num_rows
    start = filled.get("charge_period_start")
    if start is None:
        raise TerminalError(f"{source_file}: no ChargePeriodStart column; is this a FOCUS export?")
    if start.null_count:
        raise TerminalError(f"{source_file}: {start.null_count} rows have no ChargePeriodStart")
    filled["charge_date"] = _utc_dates(start)
    filled["x_extensions"] = _extensions_json(table.select(extensions)) if extensions else None
    filled["x_source_file"] = pa.chunked_array([pa.array([source_file] * rows, pa.string())])
    columns = [
        filled.get(field.name) if filled.get(field.name) is not None else pa.nulls(rows, field.type)
        for field in FOCUS_EXPORT_RAW
    ]
    return pa.Table.from_arrays(columns, schema=FOCUS_EXPORT_RAW)


def rows_in_dates(table: pa.Table, start: date, end: date) -> pa.Table:
    dates = table.column("charge_date")
    if table.num_rows == 0:
        return table
    bounds = pc.min_max(dates)
    if bounds["min"].as_py() >= start and bounds["max"].as_py() <= end:
        return table  # the usual case (a month's file, a month's run): no copy of every column
    keep = pc.and_(pc.greater_equal(dates, start), pc.less_equal(dates, end))
    return table.filter(keep)


def _typed(column: pa.ChunkedArray, target: pa.DataType, name: str) -> pa.ChunkedArray:
    if pa.types.is_timestamp(target):
        return _timestamps(column, name)
    if pa.types.is_floating(target):
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            # Parquet text columns may hold "" where a CSV export would have no value.
            column = pc.utf8_trim_whitespace(column)
            column = pc.if_else(pc.equal(column, ""), None, column)
        try:
            return pc.cast(column, target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise TerminalError(f"column {name}: not a number ({_first_line(exc)})") from None
    if _is_nested(column.type):
        return pa.chunked_array([nested_json(column)])
    return pc.cast(column, pa.string())


def _timestamps(column: pa.ChunkedArray, name: str) -> pa.ChunkedArray:
    utc = pa.timestamp("us", tz="UTC")
    if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
        if pa.types.is_date(column.type):
            column = pc.cast(column, pa.timestamp("us"))
        return pc.cast(column, utc)  # naive export timestamps are UTC
    text = pc.cast(column, pa.string())
    for attempt in (utc, pa.timestamp("us")):
        try:
            return pc.cast(pc.cast(text, attempt), utc)
        except pa.ArrowInvalid:
            continue
    # Mixed formats in one column (date-only, space-separated, offsets): parse each distinct value.
    parsed: dict[str, datetime | None] = {}
    values = []
    for value in text.to_pylist():
        if value not in parsed:
            parsed[value] = _parse_timestamp(value, name)
        values.append(parsed[value])
    return pa.chunked_array([pa.array(values, utc)])


def _parse_timestamp(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise TerminalError(f"column {name}: {value[:40]!r} is not a date/time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _utc_dates(column: pa.ChunkedArray) -> pa.ChunkedArray:
    # Cast through a naive UTC timestamp so the date is the UTC date, not a local one.
    return pc.cast(pc.cast(column, pa.timestamp("us")), pa.date32())


def _extensions_json(table: pa.Table) -> pa.Array:
    """One JSON object per row of the non-null extension values, keys sorted.

    Built with Arrow kernels, not a Python loop per row: exports run to millions of rows.
    """
    names = sorted(table.column_names)
    # Plain arrays: binary_join_element_wise mis-sizes chunked input with a scalar separator.
    parts = [
        pc.binary_join_element_wise(
            json.dumps(n) + ": ", _json_text(table.column(n).combine_chunks()), ""
        )
        for n in names
    ]
    body = pa.nulls(table.num_rows, pa.string())
    for part in parts:  # (join's null_handling="skip" drops rows that are null throughout)
        body = pc.coalesce(pc.binary_join_element_wise(body, part, ", "), body, part)
    return pc.binary_join_element_wise("{", body, "}", "")


def _json_text(column: pa.Array) -> pa.Array:
    """Each value as JSON text; nulls, empty strings and non-finite numbers stay null."""
    kind = column.type
    if _is_nested(kind):
        return nested_json(column)
    if pa.types.is_boolean(kind) or pa.types.is_integer(kind) or pa.types.is_decimal(kind):
        return pc.cast(column, pa.string())
    if pa.types.is_floating(kind):
        return pc.if_else(pc.is_finite(column), pc.cast(column, pa.string()), None)
    text = pc.cast(column, pa.string())
    text = pc.if_else(pc.equal(text, ""), None, text)
    for old, new in _JSON_ESCAPES:  # backslash first, so the others aren't escaped twice
        if pc.any(pc.match_substring(text, old)).as_py():
            text = pc.replace_substring(text, old, new)
    if pc.any(pc.match_substring_regex(text, _CONTROL)).as_py():
        text = pc.replace_substring_regex(text, _CONTROL, " ")
    return pc.binary_join_element_wise('"', text, '"', "")


_JSON_ESCAPES = (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"))
_CONTROL = r"[\x00-\x1f]"


def nested_json(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A map, struct or list column as JSON text per row, shaped by the Arrow type.

    The type decides, never the value: an empty map<string,string> (AWS Parquet's untagged
    rows) is the object {}, which FOCUS requires for Tags, where its value alone (an empty
    list of pairs) would say []. Null stays null.
    """
    kind = column.type
    return pa.array(
        [None if v is None else _dumps(_plain(v, kind)) for v in column.to_pylist()], pa.string()
    )


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True)


def _plain(value: Any, kind: pa.DataType) -> Any:
    if value is None:
        return None
    if pa.types.is_map(kind):  # Arrow gives a map as a list of (key, value) pairs
        return {str(k): _plain(v, kind.item_type) for k, v in value}
    if pa.types.is_struct(kind):
        return {f.name: _plain(value.get(f.name), f.type) for f in kind}
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return [_plain(v, kind.value_type) for v in value]
    return value


def _is_nested(kind: pa.DataType) -> bool:
    return (
        pa.types.is_map(kind)
        or pa.types.is_struct(kind)
        or pa.types.is_list(kind)
        or pa.types.is_large_list(kind)
    )


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200]
