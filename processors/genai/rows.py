"""The normalized tables genai.payg_usage writes, as Arrow schemas plus row builders.

`genai_payg_usage_raw` has one row per UTC day and provider dimension group (model,
project or workspace, API key, service tier, batch, context window). Token columns use one
convention for every provider, the one genai-prices uses: `input_tokens` is ALL input,
including cache reads and cache writes; `cached_input_tokens` and `cache_write_*` are
parts of it. Anthropic reports uncached input separately, so its rows are summed up.

`genai_payg_provider_costs` holds money as the provider reports it (OpenAI
/organization/costs, Anthropic cost_report, the GCP billing export), in currency units.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pyarrow as pa

from pipeline_ops_core.errors import TerminalError
from warehouse.schemas.genai import (
    GENAI_PROVIDER_COSTS,
    GENAI_TOKEN_COLUMNS,
    GENAI_USAGE_DIMENSIONS,
    GENAI_USAGE_RAW,
)

USAGE_TABLE = "genai_payg_usage_raw"
PROVIDER_COSTS_TABLE = "genai_payg_provider_costs"

DIMENSIONS = GENAI_USAGE_DIMENSIONS
TOKEN_COLUMNS = GENAI_TOKEN_COLUMNS
USAGE_SCHEMA = GENAI_USAGE_RAW
PROVIDER_COSTS_SCHEMA = GENAI_PROVIDER_COSTS


def as_int(value: Any, what: str) -> int:
    """A token count from a payload: ints (or integral floats/strings); null is 0."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise TerminalError(f"{what}: expected a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TerminalError(f"{what}: expected a number, got {value!r}") from None
    if number != int(number) or number < 0:
        raise TerminalError(f"{what}: expected a non-negative whole number, got {value!r}")
    return int(number)


def as_text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def usage_row(provider: str, day: date, source: str, **values: Any) -> dict[str, Any]:
    """One raw usage row: dimensions default to null, counts to 0, batch to False."""
    unknown = set(values) - set(USAGE_SCHEMA.names)
    if unknown:
        raise TerminalError(f"unknown usage column(s): {', '.join(sorted(unknown))}")
    row: dict[str, Any] = {"usage_date": day, "provider": provider, "source": source}
    row["model"] = as_text(values.get("model"))
    for name in DIMENSIONS:
        row[name] = as_text(values.get(name))
    row["batch"] = bool(values.get("batch") or False)
    for name in TOKEN_COLUMNS:
        row[name] = as_int(values.get(name), f"{provider} {name}")
    if row["cache_write_tokens"] == 0:
        row["cache_write_tokens"] = row["cache_write_5m_tokens"] + row["cache_write_1h_tokens"]
    return row


def cost_row(provider: str, day: date, source: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"usage_date": day, "provider": provider, "source": source}
    for name in PROVIDER_COSTS_SCHEMA.names:
        if name not in row:
            row[name] = values.get(name)
    row["amount"] = float(row["amount"] or 0.0)
    row["currency"] = (row["currency"] or "USD").upper()
    return row


def usage_table(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=USAGE_SCHEMA)


def provider_costs_table(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=PROVIDER_COSTS_SCHEMA)


def utc_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """[start, end] as whole UTC days: the first day's midnight, the midnight after the last."""
    return (
        datetime.combine(start, time(), tzinfo=UTC),
        datetime.combine(end + timedelta(days=1), time(), tzinfo=UTC),
    )


def utc_day(seconds: int | float) -> date:
    return datetime.fromtimestamp(seconds, tz=UTC).date()


def day_of(rfc3339: str) -> date:
    """The UTC date of an RFC 3339 timestamp such as 2026-01-01T00:00:00Z."""
    try:
        parsed = datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        raise TerminalError(f"bad timestamp {rfc3339!r} in provider response") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).date()
