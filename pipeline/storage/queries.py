"""Read-only aggregate queries over the run records: backfill resume and /metrics.

Plain functions over an Engine, beside the SqlRunStore rather than inside it, so the
store's transactional code stays as it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Engine, case, func, select

from pipeline.storage import state
from pipeline.storage.tables import dispatches, pipeline_runs, step_logs


def completed_dates(
    engine: Engine, org_slug: str, pipeline_id: str, credential_id: str, dates: Iterable[date]
) -> set[date]:
    """The one-day runs among `dates` that already completed for this org/pipeline/credential."""
    wanted = sorted(set(dates))
    if not wanted:
        return set()
    runs = pipeline_runs.c
    query = (
        select(runs.start_date)
        .where(
            runs.org_slug == org_slug,
            runs.pipeline_id == pipeline_id,
            runs.credential_id == credential_id,
            runs.status == state.COMPLETED,
            runs.start_date >= wanted[0],
            runs.start_date <= wanted[-1],
            runs.end_date == runs.start_date,
        )
        .distinct()
    )
    with engine.connect() as conn:
        found = {_as_date(d) for d in conn.execute(query).scalars()}
    return found & set(wanted)


def run_statuses(engine: Engine, run_ids: Sequence[str]) -> dict[str, str]:
    if not run_ids:
        return {}
    query = select(pipeline_runs.c.run_id, pipeline_runs.c.status).where(
        pipeline_runs.c.run_id.in_(list(run_ids))
    )
    with engine.connect() as conn:
        return {run_id: status for run_id, status in conn.execute(query)}


def run_counts(engine: Engine) -> list[tuple[str, str, int]]:
    """(status, pipeline_id, count) over every run in the metadata DB."""
    runs = pipeline_runs.c
    query = select(runs.status, runs.pipeline_id, func.count()).group_by(
        runs.status, runs.pipeline_id
    )
    with engine.connect() as conn:
        return [(s, p, int(n)) for s, p, n in conn.execute(query)]


def step_duration_histogram(
    engine: Engine, bounds_ms: Sequence[int]
) -> dict[str, tuple[list[int], int, float]]:
    """Per attempt status: (cumulative count per bound, total count, sum in ms).

    One aggregate query; the buckets are cumulative as Prometheus expects.
    """
    steps = step_logs.c
    columns: list[Any] = [
        func.sum(case((steps.duration_ms <= bound, 1), else_=0)) for bound in bounds_ms
    ]
    query = (
        select(steps.status, func.count(), func.sum(steps.duration_ms), *columns)
        .where(steps.duration_ms.is_not(None))
        .group_by(steps.status)
    )
    out: dict[str, tuple[list[int], int, float]] = {}
    with engine.connect() as conn:
        for status, count, total, *buckets in conn.execute(query):
            out[status] = ([int(b or 0) for b in buckets], int(count), float(total or 0))
    return out


def dispatch_counts(engine: Engine) -> list[tuple[str, int]]:
    query = select(dispatches.c.status, func.count()).group_by(dispatches.c.status)
    with engine.connect() as conn:
        return [(status, int(n)) for status, n in conn.execute(query)]


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))
