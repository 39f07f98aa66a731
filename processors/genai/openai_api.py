"""OpenAI Admin API: usage (completions, embeddings, ...) and /organization/costs.

Auth is `Authorization: Bearer <admin key>` (an sk-admin key; project keys get 401/403).
Days are UTC: start_time is the first day's midnight, end_time (exclusive) the midnight
after the last day, bucket_width=1d, so each bucket is one usage_date.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from pipeline_ops_core.egress import EgressClient
from pipeline_ops_core.errors import TerminalError
from processors.genai.paging import results
from processors.genai.rows import cost_row, usage_row, utc_bounds, utc_day

PROVIDER = "openai"
AUTH_HINT = " (OpenAI needs an organization admin key, sk-admin-..., in the credential)"
# endpoint -> group_by dimensions it accepts (provider_usage_apis.md)
USAGE_GROUP_BY: dict[str, tuple[str, ...]] = {
    "completions": ("model", "project_id", "api_key_id", "batch", "service_tier"),
    "embeddings": ("model", "project_id", "api_key_id"),
    "moderations": ("model", "project_id", "api_key_id"),
}
DEFAULT_ENDPOINTS = ("completions", "embeddings")
BUCKET_LIMIT = "31"  # the 1d maximum: fewest pages


def admin_key(credential: Mapping[str, Any]) -> str:
    key = credential.get("admin_key") or credential.get("api_key")
    if not isinstance(key, str) or not key:
        raise TerminalError("the OpenAI credential has no admin_key")
    return key


def _window(start: date, end: date) -> list[tuple[str, str]]:
    begin, stop = utc_bounds(start, end)
    return [
        ("start_time", str(int(begin.timestamp()))),
        ("end_time", str(int(stop.timestamp()))),
        ("bucket_width", "1d"),
        ("limit", BUCKET_LIMIT),
    ]


def fetch_usage(
    base_url: str,
    key: str,
    start: date,
    end: date,
    timeout: float,
    endpoints: tuple[str, ...] = DEFAULT_ENDPOINTS,
    client: EgressClient | None = None,
) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {key}"}
    rows: list[dict[str, Any]] = []
    for endpoint in endpoints:
        if endpoint not in USAGE_GROUP_BY:
            raise TerminalError(f"unsupported OpenAI usage endpoint {endpoint!r}")
        url = f"{base_url}/organization/usage/{endpoint}"
        params = _window(start, end) + [("group_by[]", g) for g in USAGE_GROUP_BY[endpoint]]
        for bucket, result in results(url, params, headers, timeout, AUTH_HINT, client):
            day = utc_day(bucket["start_time"])
            if start <= day <= end:
                rows.append(_usage(endpoint, day, result))
    return rows


def _usage(endpoint: str, day: date, r: dict[str, Any]) -> dict[str, Any]:
    return usage_row(
        PROVIDER,
        day,
        f"openai_admin_api:{endpoint}",
        model=r.get("model"),
        project_or_workspace_id=r.get("project_id"),
        api_key_id=r.get("api_key_id"),
        service_tier=r.get("service_tier"),
        batch=r.get("batch"),
        input_tokens=r.get("input_tokens"),  # includes cached input, as we store it
        cached_input_tokens=r.get("input_cached_tokens"),
        # Parts of input_tokens, each its own charge line (pricing.split_lines).
        cache_write_tokens=r.get("input_cache_write_tokens"),
        input_audio_tokens=r.get("input_audio_tokens"),
        cached_input_audio_tokens=r.get("input_cached_audio_tokens"),
        input_image_tokens=r.get("input_image_tokens"),
        cached_input_image_tokens=r.get("input_cached_image_tokens"),
        output_tokens=r.get("output_tokens"),
        output_audio_tokens=r.get("output_audio_tokens"),
        output_image_tokens=r.get("output_image_tokens"),
        requests=r.get("num_model_requests"),
    )


def fetch_costs(
    base_url: str,
    key: str,
    start: date,
    end: date,
    timeout: float,
    client: EgressClient | None = None,
) -> list[dict[str, Any]]:
    url = f"{base_url}/organization/costs"
    params = [*_window(start, end), ("group_by[]", "project_id"), ("group_by[]", "line_item")]
    rows: list[dict[str, Any]] = []
    headers = {"Authorization": f"Bearer {key}"}
    for bucket, result in results(url, params, headers, timeout, AUTH_HINT, client):
        day = utc_day(bucket["start_time"])
        if not start <= day <= end:
            continue
        amount = result.get("amount") or {}
        line_item = result.get("line_item")
        rows.append(
            cost_row(
                PROVIDER,
                day,
                "openai_admin_api:costs",
                project_or_workspace_id=result.get("project_id"),
                # Line items read "<model>, <input|output|...>": the model is the first part.
                model=line_item.split(",")[0].strip().lower() if line_item else None,
                line_item=line_item,
                amount=amount.get("value"),
                currency=amount.get("currency"),
            )
        )
    return rows
