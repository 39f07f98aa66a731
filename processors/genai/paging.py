"""Cursor paging shared by the OpenAI and Anthropic admin APIs.

Both answer `{data: [...], has_more, next_page}` and take the token back as `page`.
HTTP failures map onto the error roots in `generic.http_extract.get_json`: 429, 5xx and
timeouts are TransientError (with Retry-After), 401/403 TerminalError.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from errors import TerminalError
from processors.generic.http_extract import get_json

MAX_PAGES = 1000  # a runaway cursor must end, not loop for the whole step timeout


def pages(
    url: str,
    params: list[tuple[str, str]],
    headers: dict[str, str],
    timeout: float,
    auth_hint: str = "",
) -> Iterator[dict[str, Any]]:
    """Yield every page, following `next_page` until `has_more` is false."""
    token: str | None = None
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        query = params + ([("page", token)] if token else [])
        payload = get_json(url, timeout, headers, query, auth_hint)
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
            raise TerminalError(f"unexpected response from {url}: no `data` list")
        yield payload
        if not payload.get("has_more"):
            return
        token = payload.get("next_page")
        if not isinstance(token, str) or not token or token in seen:
            raise TerminalError(f"{url}: has_more is true but next_page is missing or repeated")
        seen.add(token)
    raise TerminalError(f"{url}: more than {MAX_PAGES} pages; narrow the date range")


def results(
    url: str,
    params: list[tuple[str, str]],
    headers: dict[str, str],
    timeout: float,
    auth_hint: str = "",
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(bucket, result) for every result on every page."""
    for payload in pages(url, params, headers, timeout, auth_hint):
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
