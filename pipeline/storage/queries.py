"""Read-only aggregate queries over the run records: backfill resume and /metrics.

Plain functions over an Engine, beside the SqlRunStore rather than inside it, so the
store's transactional code stays as it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

from sqlalchemy import Engine, func, select

from pipeline.storage import state
from pipeline.storage.records import as_date
from pipeline.storage.tables import pipeline_runs


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
        found = {as_date(d) for d in conn.execute(query).scalars()}
    return found & set(wanted)


def run_statuses(engine: Engine, run_ids: Sequence[str]) -> dict[str, str]:
    if not run_ids:
        return {}
    query = select(pipeline_runs.c.run_id, pipeline_runs.c.status).where(
        pipeline_runs.c.run_id.in_(list(run_ids))
    )
    with engine.connect() as conn:
        return {run_id: status for run_id, status in conn.execute(query)}


def active_run_counts(engine: Engine) -> list[tuple[str, str, int]]:
    """(status, pipeline_id, count) over the runs not yet ended: the status index
    (ix_runs_status_deadline) keeps this to the active rows, however many have ended."""
    runs = pipeline_runs.c
    query = (
        select(runs.status, runs.pipeline_id, func.count())
        .where(runs.status.in_(sorted(state.ACTIVE)))
        .group_by(runs.status, runs.pipeline_id)
    )
    with engine.connect() as conn:
        return [(s, p, int(n)) for s, p, n in conn.execute(query)]
