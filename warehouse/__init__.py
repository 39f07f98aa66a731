"""The warehouse: the backend contract (base.py), DuckDB and BigQuery backends, table
schemas, stored procedures, and `from_url`, which picks a backend from WAREHOUSE_URL."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from pipeline_ops_core.errors import TerminalError
from warehouse.base import LockWaitObserver, Warehouse


def from_url(url: str, on_lock_wait: LockWaitObserver | None = None) -> Warehouse:
    """Build the backend a WAREHOUSE_URL names.

    `duckdb:///abs/path.duckdb[?lock_timeout=SECONDS]` is a DuckDB file at an absolute
    path (the SQLAlchemy-style `duckdb:////abs/path.duckdb` means the same file);
    `bigquery://PROJECT?location=US[&endpoint=http://127.0.0.1:PORT]` is BigQuery (the
    endpoint option points at an emulator and uses anonymous credentials).
    `on_lock_wait` hears about waits for a lock another program holds (DuckDB only).
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

        # Settings build the URL as f"duckdb:///{absolute_path}", which gives four slashes.
        return DuckDBWarehouse("/" + parts.path.lstrip("/"), on_lock_wait=on_lock_wait, **kwargs)
    if parts.scheme == "bigquery":
        try:
            from warehouse.bigquery import BigQueryWarehouse
        except ImportError as exc:  # google-cloud-bigquery is in requirements.txt
            raise TerminalError(f"bigquery backend unavailable: {exc}") from None

        return BigQueryWarehouse.from_url(url)
    raise TerminalError(f"unknown warehouse URL scheme {parts.scheme!r} in {url!r}")
