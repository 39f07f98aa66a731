"""Cursor paging shared by the OpenAI and Anthropic admin APIs.

Both answer `{data: [...], has_more, next_page}` and take the token back as `page`.
HTTP failures map onto the error roots in `generic.http_extract.get_json`: 429, 5xx and
timeouts are TransientError (with Retry-After), 401/403 TerminalError.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pipeline_ops_core.egress import EgressClient, Limits, page_tokens
from pipeline_ops_core.errors import TerminalError
from processors.generic.http_extract import get_json


def pages(
    url: str,
    params: list[tuple[str, str]],
    headers: dict[str, str],
    timeout: float,
    auth_hint: str = "",
    client: EgressClient | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield every page, following `next_page` until `has_more` is false.

    A runaway cursor ends: a repeated token, or more than PIPELINE_OPS_MAX_PAGES pages.
    """
    token: str | None = None
    limits = client.limits if client is not None else Limits.from_env()
    next_page = page_tokens(limits, url)
    while True:
        query = params + ([("page", token)] if token else [])
        payload = get_json(url, timeout, headers, query, auth_hint, client)
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
            raise TerminalError(f"unexpected response from {url}: no `data` list")
        yield payload
        if not payload.get("has_more"):
            return
        token = payload.get("next_page")
        if not isinstance(token, str) or not token:
            raise TerminalError(f"{url}: has_more is true but next_page is missing")
        next_page(token)


def results(
    url: str,
    params: list[tuple[str, str]],
    headers: dict[str, str],
    timeout: float,
    auth_hint: str = "",
    client: EgressClient | None = None,
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(bucket, result) for every result on every page."""
    for payload in pages(url, params, headers, timeout, auth_hint, client):
        yield from buckets(payload, url)


def buckets(payload: dict[str, Any], url: str) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(bucket, result) for every result of every bucket of a page."""
    for bucket in payload["data"]:
        results = bucket.get("results") if isinstance(bucket, dict) else None
        if not isinstance(results, list):
            raise TerminalError(f"unexpected response from {url}: a bucket without `results`")
        for result in results:
            if not isinstance(result, dict):
                raise TerminalError(f"unexpected response from {url}: a result is not an object")
            yield bucket, result
