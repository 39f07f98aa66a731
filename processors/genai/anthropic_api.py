"""Anthropic Admin API: usage_report/messages and cost_report.

Headers `x-api-key: <admin key>` and `anthropic-version`. Days are UTC: starting_at is
the first day's midnight, ending_at the midnight after the last day, bucket_width=1d.
cost_report amounts are decimal strings in cents; they are stored in dollars.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from pipeline_ops_core.egress import EgressClient
from pipeline_ops_core.errors import TerminalError
from processors.genai.paging import results
from processors.genai.rows import as_int, cost_row, day_of, usage_row, utc_bounds

PROVIDER = "anthropic"
API_VERSION = "2023-06-01"
AUTH_HINT = " (Anthropic needs an Admin API key, sk-ant-admin..., in the credential)"
USAGE_GROUP_BY = ("model", "workspace_id", "api_key_id", "service_tier", "context_window")
BUCKET_LIMIT = "31"


def headers(credential: Mapping[str, Any]) -> dict[str, str]:
    key = credential.get("admin_key") or credential.get("api_key")
    if not isinstance(key, str) or not key:
        raise TerminalError("the Anthropic credential has no admin_key")
    return {"x-api-key": key, "anthropic-version": API_VERSION}


def _window(start: date, end: date) -> list[tuple[str, str]]:
    begin, stop = utc_bounds(start, end)
    return [
        ("starting_at", begin.strftime("%Y-%m-%dT%H:%M:%SZ")),
        ("ending_at", stop.strftime("%Y-%m-%dT%H:%M:%SZ")),
        ("bucket_width", "1d"),
        ("limit", BUCKET_LIMIT),
    ]


def fetch_usage(
    base_url: str,
    hdrs: dict[str, str],
    start: date,
    end: date,
    timeout: float,
    client: EgressClient | None = None,
) -> list[dict[str, Any]]:
    url = f"{base_url}/usage_report/messages"
    params = _window(start, end) + [("group_by[]", g) for g in USAGE_GROUP_BY]
    rows: list[dict[str, Any]] = []
    for bucket, r in results(url, params, hdrs, timeout, AUTH_HINT, client):
        day = day_of(bucket.get("starting_at", ""))
        if start <= day <= end:
            rows.append(_usage(day, r))
    return rows


def _usage(day: date, r: dict[str, Any]) -> dict[str, Any]:
    creation = r.get("cache_creation") or {}
    write_5m = as_int(creation.get("ephemeral_5m_input_tokens"), "cache 5m tokens")
    write_1h = as_int(creation.get("ephemeral_1h_input_tokens"), "cache 1h tokens")
    uncached = as_int(r.get("uncached_input_tokens"), "uncached_input_tokens")
    cache_read = as_int(r.get("cache_read_input_tokens"), "cache_read_input_tokens")
    tier = r.get("service_tier")
    return usage_row(
        PROVIDER,
        day,
        "anthropic_admin_api:usage_report",
        model=r.get("model"),
        project_or_workspace_id=r.get("workspace_id"),
        api_key_id=r.get("api_key_id"),
        service_tier=tier,
        context_window=r.get("context_window"),
        batch=tier == "batch",
        # Total input = uncached + cache writes + cache reads (the documented identity).
        input_tokens=uncached + write_5m + write_1h + cache_read,
        cached_input_tokens=cache_read,
        cache_write_5m_tokens=write_5m,
        cache_write_1h_tokens=write_1h,
        output_tokens=r.get("output_tokens"),
        web_search_requests=(r.get("server_tool_use") or {}).get("web_search_requests"),
        # The usage report has no request count.
    )


def fetch_costs(
    base_url: str,
    hdrs: dict[str, str],
    start: date,
    end: date,
    timeout: float,
    client: EgressClient | None = None,
) -> list[dict[str, Any]]:
    url = f"{base_url}/cost_report"
    params = [*_window(start, end), ("group_by[]", "workspace_id"), ("group_by[]", "description")]
    rows: list[dict[str, Any]] = []
    for bucket, r in results(url, params, hdrs, timeout, AUTH_HINT, client):
        day = day_of(bucket.get("starting_at", ""))
        if not start <= day <= end:
            continue
        try:
            dollars = Decimal(str(r.get("amount") or "0")) / 100  # cents -> dollars
        except InvalidOperation:
            raise TerminalError(f"{url}: bad amount {r.get('amount')!r}") from None
        rows.append(
            cost_row(
                PROVIDER,
                day,
                "anthropic_admin_api:cost_report",
                project_or_workspace_id=r.get("workspace_id"),
                model=r.get("model"),
                line_item=r.get("description"),
                cost_type=r.get("cost_type"),
                token_type=r.get("token_type"),
                service_tier=r.get("service_tier"),
                context_window=r.get("context_window"),
                amount=float(dollars),
                currency=r.get("currency"),
            )
        )
    return rows
