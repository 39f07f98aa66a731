"""Arrow <-> BigQuery types, query parameters and SQL literals, without a client.

Both backends take their DDL from the same Arrow schemas (warehouse/schemas/__init__.py). The
BigQuery type system is the reference: `bq_type_name` also serves to compare a table's
columns with a wanted schema on any backend (bootstrap-sync's retype check).
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa

from pipeline_ops_core.errors import TerminalError

# GoogleSQL NUMERIC is DECIMAL(38, 9); BIGNUMERIC is DECIMAL(76.76, 38).
NUMERIC = pa.decimal128(38, 9)
BIGNUMERIC = pa.decimal256(76, 38)

# Legacy names the REST API may still return, mapped to the standard ones.
_ALIASES = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL", "DECIMAL": "NUMERIC"}

_TO_ARROW: dict[str, pa.DataType] = {
    "STRING": pa.string(),
    "INT64": pa.int64(),
    "FLOAT64": pa.float64(),
    "BOOL": pa.bool_(),
    "DATE": pa.date32(),
    "TIMESTAMP": pa.timestamp("us", tz="UTC"),
    "DATETIME": pa.timestamp("us"),
    "NUMERIC": NUMERIC,
    "BIGNUMERIC": BIGNUMERIC,
    "JSON": pa.string(),
    "BYTES": pa.binary(),
    "TIME": pa.time64("us"),
}


def bq_type_name(field: pa.Field) -> str:
    """The BigQuery column type for an Arrow field (the same types DuckDB accepts)."""
    t = field.type
    if isinstance(t, pa.BaseExtensionType):
        t = t.storage_type  # JSON travels as text, on both backends
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "STRING"
    if t in (pa.int64(), pa.int32()):
        return "INT64"
    if t == pa.float64():
        return "FLOAT64"
    if t == pa.bool_():
        return "BOOL"
    if t == pa.date32():
        return "DATE"
    if pa.types.is_timestamp(t):
        return "TIMESTAMP" if t.tz else "DATETIME"  # an instant vs. a wall-clock time
    if pa.types.is_decimal128(t):
        return "NUMERIC" if t.scale <= 9 and t.precision - t.scale <= 29 else "BIGNUMERIC"
    raise TerminalError(f"column {field.name!r}: unsupported Arrow type {field.type}")


def normalize_type_name(name: str) -> str:
    upper = name.upper()
    return _ALIASES.get(upper, upper)


def arrow_type(bq_type: str) -> pa.DataType:
    name = normalize_type_name(bq_type)
    if name not in _TO_ARROW:
        raise TerminalError(f"BigQuery type {bq_type} has no Arrow mapping here")
    return _TO_ARROW[name]


def infer_param_type(value: object) -> str:
    """The GoogleSQL type of a Python query parameter value."""
    if value is None:
        return "STRING"  # an untyped NULL; comparisons with it are NULL whatever its type
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INT64"
    if isinstance(value, float):
        return "FLOAT64"
    if isinstance(value, Decimal):
        return "NUMERIC"
    if isinstance(value, datetime):
        return "TIMESTAMP" if value.tzinfo else "DATETIME"
    if isinstance(value, date):
        return "DATE"
    if isinstance(value, str):
        return "STRING"
    raise TerminalError(f"unsupported query parameter type {type(value).__name__}")


def sql_literal(value: object, bq_type: str) -> str:
    """A GoogleSQL literal for `value`, for the emulator only (see sql.inline_params).

    Production always binds values as query parameters; this exists because the emulator
    drops query parameters in multi-statement queries and CALL.
    """
    name = normalize_type_name(bq_type)
    if value is None:
        return f"CAST(NULL AS {name})"
    if name == "STRING":
        return _string_literal(str(value))
    if name == "BOOL":
        return "TRUE" if value else "FALSE"
    if name == "INT64":
        return str(int(value))  # type: ignore[call-overload]
    if name == "FLOAT64":
        f = float(value)  # type: ignore[arg-type]
        if math.isfinite(f):
            return repr(f)
        return f"CAST({_string_literal(str(f))} AS FLOAT64)"
    if name in ("NUMERIC", "BIGNUMERIC"):
        return f"{name} {_string_literal(str(Decimal(str(value))))}"
    if name == "DATE" and isinstance(value, date) and not isinstance(value, datetime):
        return f"DATE {_string_literal(value.isoformat())}"
    if name == "TIMESTAMP" and isinstance(value, datetime):
        instant = value if value.tzinfo else value.replace(tzinfo=UTC)
        return f"TIMESTAMP {_string_literal(instant.astimezone(UTC).isoformat())}"
    if name == "DATETIME" and isinstance(value, datetime):
        return f"DATETIME {_string_literal(value.replace(tzinfo=None).isoformat())}"
    raise TerminalError(f"cannot write {value!r} as a {name} literal")


_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _string_literal(text: str) -> str:
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "'" + "".join(out) + "'"
