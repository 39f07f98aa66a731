"""Running totals behind /metrics: bumped by the statement that ends a run, a step attempt
or a schedule tick, in the same transaction, and read whole by a scrape.

A scrape used to aggregate every run and step row, so its cost grew with history and
its "counts" fell when old rows were deleted. These rows are few (org x pipeline x
status, plus one per histogram bucket), only ever grow, and `db prune` leaves them alone.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite

from pipeline.storage.tables import counters, pipeline_runs

RUNS = "runs"  # org_slug, pipeline_id, status; last_at: when the last such run ended
STEP_DURATION = "step_duration"  # status, le (bucket bound in seconds); total: seconds
DISPATCHES = "dispatches"  # org_slug, pipeline_id (the pipeline path), status

STEP_BUCKETS_SECONDS = (0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)
INF = "+Inf"


@dataclass(frozen=True)
class CounterRow:
    name: str
    org_slug: str
    pipeline_id: str
    status: str
    le: str
    value: int
    total: float
    last_at: datetime | None


_UPSERTS: dict[str, Any] = {}


def _upsert(conn: Connection) -> Any:
    """The upsert statement of this dialect, built once: executed with parameters, it
    hits SQLAlchemy's compiled cache instead of being built and compiled per call (which
    cost milliseconds on the path that ends every step)."""
    name = conn.dialect.name
    statement = _UPSERTS.get(name)
    if statement is None:
        insert: postgresql.Insert | sqlite.Insert
        if name == "postgresql":
            insert = postgresql.insert(counters)
        elif name == "sqlite":
            insert = sqlite.insert(counters)
        else:
            raise NotImplementedError(f"counters need SQLite or PostgreSQL, not {name}")
        new = insert.excluded
        statement = insert.on_conflict_do_update(
            index_elements=["name", "org_slug", "pipeline_id", "status", "le"],
            set_={
                "value": counters.c.value + new.value,
                "total": counters.c.total + new.total,
                "last_at": func.coalesce(new.last_at, counters.c.last_at),
            },
        )
        _UPSERTS[name] = statement
    return statement


def bump(
    conn: Connection,
    name: str,
    *,
    org_slug: str = "",
    pipeline_id: str = "",
    status: str = "",
    le: str = "",
    total: float = 0.0,
    at: datetime | None = None,
) -> None:
    """Add one (and `total`) to a counter row, creating it if need be, inside `conn`'s
    transaction: one upsert, so concurrent enders never lose an increment."""
    conn.execute(
        _upsert(conn),
        {
            "name": name,
            "org_slug": org_slug,
            "pipeline_id": pipeline_id,
            "status": status,
            "le": le,
            "value": 1,
            "total": total,
            "last_at": at,
        },
    )


def count_run_end(conn: Connection, run_id: str, status: str, at: datetime) -> None:
    row = conn.execute(
        select(pipeline_runs.c.org_slug, pipeline_runs.c.pipeline_id).where(
            pipeline_runs.c.run_id == run_id
        )
    ).first()
    if row is not None:
        bump(conn, RUNS, org_slug=row[0], pipeline_id=row[1], status=status, at=at)


def bucket_of(seconds: float, bounds: Sequence[float] = STEP_BUCKETS_SECONDS) -> str:
    """The smallest bucket bound holding `seconds`, as the `le` label writes it."""
    index = bisect.bisect_left(bounds, seconds)
    return str(float(bounds[index])) if index < len(bounds) else INF


def count_step_end(conn: Connection, status: str, duration_ms: int | None) -> None:
    if duration_ms is None:
        return
    seconds = duration_ms / 1000
    bump(conn, STEP_DURATION, status=status, le=bucket_of(seconds), total=seconds)


def read_all(engine: Engine) -> list[CounterRow]:
    with engine.connect() as conn:
        return [CounterRow(*row) for row in conn.execute(select(counters))]
