"""warehouse."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from errors import TerminalError
from warehouse.base import Warehouse


def from_url(url: str) -> Warehouse:
    """Build the backend a WAREHOUSE_URL names.

    `duckdb:///abs/path.duckdb[?lock_timeout=SECONDS]` is a DuckDB file at an absolute
    path; `bigquery://PROJECT?location=US` is BigQuery.
    """
    parts = urlsplit(url)
    if parts.scheme == "duckdb":
        if parts.netloc or not parts.path.startswith("/") or parts.path.endswith("/"):
            raise TerminalError(
                f"invalid duckdb URL {url!r}: expected duckdb:///absolute/path.duckdb"
            )
        if parts.path == "/:memory:":
            # Each operation opens its own connection, so an in-memory database would be
            # empty again on every call.
            raise TerminalError("duckdb :memory: is not supported; use a file path")
        query = parse_qs(parts.query)
        kwargs: dict[str, float] = {}
        if "lock_timeout" in query:
            try:
                kwargs["lock_timeout"] = float(query["lock_timeout"][-1])
            except ValueError:
                raise TerminalError(f"invalid lock_timeout in duckdb URL {url!r}") from None
        from warehouse.duckdb import DuckDBWarehouse  # only the chosen backend is imported

        return DuckDBWarehouse(parts.path, **kwargs)
    if parts.scheme == "bigquery":
        raise TerminalError("bigquery backend not installed yet")
    raise TerminalError(f"unknown warehouse URL scheme {parts.scheme!r} in {url!r}")
