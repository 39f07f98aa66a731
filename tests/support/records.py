"""Reads of the metadata database that only tests need."""

from __future__ import annotations

from sqlalchemy import func, select

from pipeline.storage.run_store import SqlRunStore
from pipeline.storage.tables import pipeline_runs


def count_runs(store: SqlRunStore, org_slug: str | None = None) -> int:
    """How many runs are recorded (for one org): what a refused request must leave as it was."""
    query = select(func.count()).select_from(pipeline_runs)
    if org_slug:
        query = query.where(pipeline_runs.c.org_slug == org_slug)
    with store.engine.connect() as conn:
        return int(conn.execute(query).scalar() or 0)
