"""Gemini spend from the GCP Cloud Billing export (Gemini API and Vertex AI services).

Google has no usage API for Gemini; the billing export is the record of money and of
token counts (usage.amount, unit "count", per SKU). It is read from `billing_table`
(project.dataset.table) with the org's own service account, as cloud.gcp_billing_export
does, or from a flattened export file (`path`, CSV/JSONL with the columns the query below
returns). SKU descriptions name the model,
the direction and the prompt length tier, e.g.
"Generate content output token count gemini 2.5 flash short input text".
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pipeline_ops_core.egress import EgressRefused
from pipeline_ops_core.errors import PipelineOpsError, TerminalError, TransientError
from processors.cloud.exports.files import csv_records
from processors.genai.rows import cost_row, usage_row, utc_bounds

PROVIDER = "gemini"
SOURCE = "gcp_billing_export"
# Billing service ids (third-party sources, see cloud_billing_sources.md); overridable.
SERVICE_IDS = {"gemini_api": "AEFD-7695-64FA", "vertex_ai": "C7E2-9256-1C43"}
_MODEL = re.compile(
    r"gemini[\s\-]+(\d+(?:\.\d+)?)[\s\-]+(flash[\s\-]+lite|flash|pro|ultra|nano)"
    r"(?:[\s\-]+(preview))?",
    re.IGNORECASE,
)

QUERY = """
SELECT
  DATE(usage_start_time) AS usage_date,
  service.id AS service_id,
  sku.description AS sku_description,
  project.id AS project_id,
  usage.amount AS usage_amount,
  usage.unit AS usage_unit,
  cost,
  currency,
  IFNULL((SELECT SUM(c.amount) FROM UNNEST(credits) AS c), 0) AS credits
FROM `{table}`
WHERE usage_start_time >= @start_ts AND usage_start_time < @end_ts
  AND service.id IN (@gemini_api, @vertex_ai)
"""


def parse_sku(description: str) -> tuple[str | None, str, str | None]:
    """(model, kind, context_window) where kind is input|cached_input|output|other."""
    text = description.lower()
    match = _MODEL.search(text)
    model = None
    if match:
        parts = ["gemini", match.group(1), re.sub(r"[\s\-]+", "-", match.group(2))]
        model = "-".join(parts + ([match.group(3)] if match.group(3) else []))
    if "cache" in text and "token" in text:
        kind = "cached_input"
    elif "output token" in text:
        kind = "output"
    elif "input token" in text or "token count" in text:
        kind = "input"
    else:
        kind = "other"
    window = "200k-1M" if "long input" in text else "0-200k" if "short input" in text else None
    return model, kind, window


def query_rows(
    credential: Mapping[str, Any], table: str, start: date, end: date
) -> list[dict[str, Any]]:
    """The export's Gemini rows, read as the org's own service account (never the
    platform's warehouse identity: that could read any org's tables).

    A table that does not exist and one the key may not read give the same message, so
    the step can't be used to learn which tables exist.
    """
    from processors.cloud.gcp.billing_export import (
        GOOGLE_API_HOSTS,
        checked_url,
        google_egress,
        service_account_info,
    )
    from processors.cloud.gcp.export_rows import parse_table_name
    from warehouse.bigquery import BigQueryWarehouse

    export = parse_table_name(table)
    table = export.name
    info = service_account_info(credential)
    if info is None:
        raise TerminalError(
            "the Gemini billing export is read with the org's own service account: the "
            "credential needs a service-account key (type service_account, or service_account)"
        )
    endpoint = credential.get("api_endpoint")
    endpoint = checked_url(endpoint, "api_endpoint", GOOGLE_API_HOSTS) if endpoint else None
    who = str(info.get("client_email"))
    project = str(credential.get("job_project") or info.get("project_id") or export.project)
    start_ts, end_ts = utc_bounds(start, end)
    params = {"start_ts": start_ts, "end_ts": end_ts, **SERVICE_IDS}
    try:
        with google_egress(credential):
            reader = BigQueryWarehouse.for_service_account(
                info, project, str(credential.get("location") or "US"), endpoint
            )
            return reader.query(QUERY.format(table=table), params).to_pylist()
    except TransientError:
        raise TransientError(
            f"BigQuery unavailable reading billing_table {table}; try again later",
            retry_after=30.0,
        ) from None
    except (PipelineOpsError, OSError) as exc:
        if isinstance(exc, EgressRefused):
            raise
        raise TerminalError(
            f"billing_table {table} not found or not readable as {who} (grant it BigQuery "
            "Data Viewer on the export dataset and BigQuery Job User in the job project)"
        ) from None


def file_rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            return csv_records(handle)
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def normalize(
    rows: Iterable[dict[str, Any]], start: date, end: date
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Billing rows -> (usage rows per day/project/model/tier, provider cost rows)."""
    usage: dict[tuple[Any, ...], dict[str, int]] = {}
    costs: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        day = _as_date(row.get("usage_date"))
        if not start <= day <= end:
            continue
        model, kind, window = parse_sku(str(row.get("sku_description") or ""))
        project = row.get("project_id") or None
        amount = float(row.get("usage_amount") or 0)
        if kind != "other" and (row.get("usage_unit") or "count") == "count":
            counts = usage.setdefault((day, project, model, window), {})
            tokens = round(amount)
            # Cached tokens are part of input, as in every provider's rows.
            if kind in ("input", "cached_input"):
                counts["input_tokens"] = counts.get("input_tokens", 0) + tokens
            if kind == "cached_input":
                counts["cached_input_tokens"] = counts.get("cached_input_tokens", 0) + tokens
            if kind == "output":
                counts["output_tokens"] = counts.get("output_tokens", 0) + tokens
        # Net of credits (free tier, promotions): what the invoice shows.
        net = float(row.get("cost") or 0) + float(row.get("credits") or 0)
        key = (day, project, model, row.get("sku_description"), row.get("currency") or "USD")
        entry = costs.setdefault(key, {"amount": 0.0})
        entry["amount"] += net
    usage_rows = [
        usage_row(
            PROVIDER,
            day,
            SOURCE,
            model=model,
            project_or_workspace_id=project,
            context_window=window,
            **counts,
        )
        for (day, project, model, window), counts in sorted(usage.items(), key=_sort_key)
    ]
    cost_rows = [
        cost_row(
            PROVIDER,
            day,
            SOURCE,
            project_or_workspace_id=project,
            model=model,
            line_item=sku,
            amount=entry["amount"],
            currency=currency,
        )
        for (day, project, model, sku, currency), entry in sorted(costs.items(), key=_sort_key)
    ]
    return usage_rows, cost_rows


def _sort_key(item: tuple[tuple[Any, ...], Any]) -> tuple[str, ...]:
    return tuple(str(part) for part in item[0])


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.astimezone(UTC).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise TerminalError(f"billing row has a bad usage_date {value!r}") from None
