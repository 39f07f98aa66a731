"""Read-only queries of the web console over the run records: the filtered run list and
the coverage matrix.

Each is one indexed query on (org_slug, ...) that never reads the plan column: the
console's pages are rendered from these, so their cost is a page's cost. The run list
returns RunRecords (without their plan), as the run store's history does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, or_, select

from pipeline.storage import state
from pipeline.storage.records import RunRecord, as_date
from pipeline.storage.tables import pipeline_runs

# The run list reads every column but the plan (as the history endpoint does): its rows
# are RunRecords, with `plan` None.
_LIST_COLUMNS = tuple(c for c in pipeline_runs.c if c.name != "plan")


@dataclass(frozen=True)
class RunFilter:
    pipeline_path: str | None = None
    status: str | None = None
    trigger: str | None = None
    # Runs created on these UTC days (inclusive).
    created_from: date | None = None
    created_to: date | None = None


def _rows(engine: Engine, query: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings().all()]


def list_runs(
    engine: Engine,
    org_slug: str,
    filters: RunFilter,
    limit: int,
    cursor: tuple[datetime, str] | None = None,
) -> list[RunRecord]:
    """Newest first, keyset-paginated on (created_at, run_id) like the history endpoint."""
    runs = pipeline_runs.c
    query = select(*_LIST_COLUMNS).where(runs.org_slug == org_slug)
    if filters.pipeline_path:
        query = query.where(runs.pipeline_path == filters.pipeline_path)
    if filters.status:
        query = query.where(runs.status == filters.status)
    if filters.trigger:
        query = query.where(runs.trigger == filters.trigger)
    if filters.created_from:
        query = query.where(
            runs.created_at >= datetime.combine(filters.created_from, datetime.min.time())
        )
    if filters.created_to:
        end = datetime.combine(filters.created_to + timedelta(days=1), datetime.min.time())
        query = query.where(runs.created_at < end)
    if cursor is not None:
        created, run_id = cursor
        query = query.where(
            or_(
                runs.created_at < created,
                and_(runs.created_at == created, runs.run_id < run_id),
            )
        )
    query = query.order_by(runs.created_at.desc(), runs.run_id.desc()).limit(limit)
    with engine.connect() as conn:
        return [RunRecord.from_row(r) for r in conn.execute(query).mappings().all()]


def runs_covering(engine: Engine, org_slug: str, first: date, last: date) -> list[dict[str, Any]]:
    """The org's runs whose dates overlap [first, last], oldest first (so a later run of the
    same cell is seen last)."""
    runs = pipeline_runs.c
    query = (
        select(
            runs.run_id,
            runs.pipeline_path,
            runs.status,
            runs.start_date,
            runs.end_date,
            runs.created_at,
        )
        .where(runs.org_slug == org_slug, runs.start_date <= last, runs.end_date >= first)
        .order_by(runs.created_at, runs.run_id)
    )
    return _rows(engine, query)


# What a coverage cell shows, strongest first: a day any completed run loaded is loaded.
CELL_ORDER = ("loaded", "running", "failed", "missing")
_CELL_OF_STATUS = {state.COMPLETED: "loaded", state.FAILED: "failed", state.CANCELLED: "failed"}


@dataclass(slots=True)
class Cell:
    day: date
    status: str = "missing"
    run_id: str | None = None


def coverage(
    engine: Engine, org_slug: str, paths: list[str], first: date, last: date
) -> dict[str, list[Cell]]:
    """pipeline_path -> one cell per day of [first, last]: loaded (a completed run covers
    the day), running (an active one does), failed (only failed or cancelled runs did)
    or missing (no run)."""
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    grid: dict[str, list[Cell]] = {p: [Cell(d) for d in days] for p in paths}
    for run in runs_covering(engine, org_slug, first, last):
        cells = grid.get(run["pipeline_path"])
        if cells is None:
            cells = grid[run["pipeline_path"]] = [Cell(d) for d in days]
        kind = _CELL_OF_STATUS.get(run["status"], "running")
        lo = max(as_date(run["start_date"]), first)
        hi = min(as_date(run["end_date"]), last)
        for n in range((lo - first).days, (hi - first).days + 1):
            cell = cells[n]
            # Later runs replace earlier ones of the same strength; a weaker never wins.
            if CELL_ORDER.index(kind) <= CELL_ORDER.index(cell.status):
                cell.status, cell.run_id = kind, run["run_id"]
    return grid


def missing_ranges(cells: list[Cell]) -> list[tuple[date, date]]:
    """The runs of consecutive missing or failed days of one pipeline's row."""
    ranges: list[tuple[date, date]] = []
    start: date | None = None
    prev: date | None = None
    for cell in cells:
        if cell.status in ("missing", "failed"):
            start = start or cell.day
            prev = cell.day
        elif start is not None and prev is not None:
            ranges.append((start, prev))
            start = None
    if start is not None and prev is not None:
        ranges.append((start, prev))
    return ranges
