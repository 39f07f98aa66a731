"""`source: export`: usage from a CSV or JSONL file, for DeepSeek (no usage API) and any provider.

The step config maps each raw-table column to a file column; a list of file columns is
summed (DeepSeek's prompt_cache_hit_tokens + prompt_cache_miss_tokens is its input).
Unmapped columns keep their own name if the file has it. Example, DeepSeek:

    columns:
      usage_date: date
      model: model
      api_key_id: api_key_name
      input_tokens: [prompt_cache_hit_tokens, prompt_cache_miss_tokens]
      cached_input_tokens: prompt_cache_hit_tokens
      output_tokens: completion_tokens
      requests: requests
      amount: cost            # optional: provider-reported money -> provider costs
      currency: currency

Rows of the same day and dimensions are summed, so an hourly export gives daily rows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

from pipeline_ops_core.errors import TerminalError
from processors.base import project_path
from processors.cloud.exports.files import csv_records
from processors.genai.rows import (
    DIMENSIONS,
    TOKEN_COLUMNS,
    as_int,
    as_text,
    cost_row,
    usage_row,
)

KEY_COLUMNS = ("usage_date", "model", *DIMENSIONS, "batch")
MONEY_COLUMNS = ("amount", "currency")
MAPPABLE = (*KEY_COLUMNS, *TOKEN_COLUMNS, *MONEY_COLUMNS)


def resolve_path(raw: str) -> Path:
    path = project_path(raw)
    if not path.is_file():
        raise TerminalError(f"usage export file not found: {raw}")
    return path


def read_records(path: Path, fmt: str | None) -> list[dict[str, Any]]:
    fmt = (fmt or path.suffix.lstrip(".")).lower().replace("ndjson", "jsonl")
    try:
        if fmt == "csv":
            with path.open(newline="", encoding="utf-8") as handle:
                return csv_records(handle)
        if fmt == "jsonl":
            with path.open(encoding="utf-8") as handle:
                return [json.loads(line) for line in handle if line.strip()]
    except (OSError, ValueError) as exc:
        raise TerminalError(f"cannot read {path.name} as {fmt}: {exc}") from None
    raise TerminalError(f"unknown export format {fmt!r}: use csv or jsonl")


def _value(record: Mapping[str, Any], source: str | list[str], column: str) -> Any:
    if isinstance(source, list):
        return sum(as_int(record.get(s), f"{column} ({s})") for s in source)
    return record.get(source)


def normalize(
    records: list[dict[str, Any]],
    provider: str,
    mapping: Mapping[str, Any],
    start: date,
    end: date,
    source: str,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    unknown = sorted(set(mapping) - set(MAPPABLE))
    if unknown:
        raise TerminalError(f"columns mapping has unknown key(s): {', '.join(unknown)}")
    full = {name: mapping.get(name, name) for name in MAPPABLE}
    usage: dict[tuple[Any, ...], dict[str, int]] = {}
    money: dict[tuple[Any, ...], float] = {}
    for number, record in enumerate(records, 1):
        raw_day = _value(record, full["usage_date"], "usage_date")
        try:
            day = date.fromisoformat(str(raw_day)[:10])
        except ValueError:
            raise TerminalError(f"{source} row {number}: bad usage_date {raw_day!r}") from None
        if not start <= day <= end:
            continue
        key_values = [day] + [as_text(_value(record, full[c], c)) for c in KEY_COLUMNS[1:-1]]
        batch = str(_value(record, full["batch"], "batch") or "").lower() in ("1", "true", "yes")
        key = (*key_values, batch)
        counts = usage.setdefault(key, {})
        for column in TOKEN_COLUMNS:
            counts[column] = counts.get(column, 0) + as_int(
                _value(record, full[column], column), f"{source} row {number} {column}"
            )
        if "amount" in mapping:
            currency = as_text(_value(record, full["currency"], "currency")) or "USD"
            money_key = (day, key_values[2], key_values[1], currency)  # day, project, model
            amount = _value(record, full["amount"], "amount")
            money[money_key] = money.get(money_key, 0.0) + float(amount or 0)
    usage_rows = [
        usage_row(provider, key[0], source, **dict(zip(KEY_COLUMNS[1:], key[1:], strict=True)), **c)
        for key, c in usage.items()
    ]
    cost_rows = [
        cost_row(
            provider,
            day,
            source,
            project_or_workspace_id=project,
            model=model,
            line_item=model,
            amount=amount,
            currency=currency,
        )
        for (day, project, model, currency), amount in money.items()
    ]
    return usage_rows, cost_rows
