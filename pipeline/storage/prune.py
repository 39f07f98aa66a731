"""Retention: delete ended runs older than a cutoff, with every row that hangs off them.

What goes, per run that ended (completed, failed, cancelled) before the cutoff: its step
attempts, log lines, state transitions, released quota lease and schedule dispatch rows,
then the run itself; plus schedule dispatch rows that started no run and are older than
the cutoff. What never goes: an active run (whatever its age), a lease still held, the
running totals /metrics reads (pipeline/storage/counters.py), and anything in the
warehouse, which this code never opens.

Runs are taken in batches of `batch_size`, each deleted in its own short transaction,
so a prune of millions of rows never holds a long lock and, interrupted, resumes where it
stopped on its next call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Delete, Engine, ScalarSelect, Select, delete, func, select

from pipeline.storage import state
from pipeline.storage.tables import (
    dispatches,
    log_lines,
    org_quota_leases,
    pipeline_runs,
    state_transitions,
    step_logs,
)

BATCH_SIZE = 500
TABLES = (
    "runs",
    "step_logs",
    "log_lines",
    "state_transitions",
    "quota_leases",
    "schedule_dispatches",
)


@dataclass
class PruneReport:
    cutoff: datetime
    dry_run: bool
    # Rows deleted per table (with dry_run: rows that would be).
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    batches: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "cutoff": self.cutoff.isoformat(),
            "dry_run": self.dry_run,
            "batches": self.batches,
            "rows": dict(self.rows),
        }


def _old_runs(cutoff: datetime) -> Select[Any]:
    runs = pipeline_runs.c
    return select(runs.run_id).where(
        runs.status.in_(sorted(state.TERMINAL)), runs.ended_at < cutoff
    )


def _runless_dispatches(cutoff: datetime) -> Select[Any]:
    d = dispatches.c
    return select(d.id).where(d.run_id.is_(None), d.status != "claimed", d.scheduled_time < cutoff)


def _child_deletes(ids: list[str]) -> list[tuple[str, Delete]]:
    leases = org_quota_leases.c
    return [
        ("step_logs", delete(step_logs).where(step_logs.c.run_id.in_(ids))),
        ("log_lines", delete(log_lines).where(log_lines.c.run_id.in_(ids))),
        (
            "state_transitions",
            delete(state_transitions).where(state_transitions.c.run_id.in_(ids)),
        ),
        # A lease not yet released still counts against its org's concurrency until the
        # quota code releases or expires it; that is not retention's call.
        (
            "quota_leases",
            delete(org_quota_leases).where(leases.run_id.in_(ids), leases.released_at.is_not(None)),
        ),
        ("schedule_dispatches", delete(dispatches).where(dispatches.c.run_id.in_(ids))),
    ]


def _count(conn: Connection, table_name: str, run_ids: ScalarSelect[str]) -> int:
    table = {
        "step_logs": step_logs,
        "log_lines": log_lines,
        "state_transitions": state_transitions,
        "quota_leases": org_quota_leases,
        "schedule_dispatches": dispatches,
    }[table_name]
    query = select(func.count()).select_from(table).where(table.c.run_id.in_(run_ids))
    if table_name == "quota_leases":
        query = query.where(org_quota_leases.c.released_at.is_not(None))
    return int(conn.execute(query).scalar_one())


def prune_runs(
    engine: Engine, cutoff: datetime, *, dry_run: bool = False, batch_size: int = BATCH_SIZE
) -> PruneReport:
    report = PruneReport(cutoff, dry_run)
    if dry_run:
        with engine.connect() as conn:
            old = _old_runs(cutoff).scalar_subquery()
            report.rows["runs"] = int(
                conn.execute(
                    select(func.count()).select_from(_old_runs(cutoff).subquery())
                ).scalar_one()
            )
            for name in TABLES[1:]:
                report.rows[name] = _count(conn, name, old)
            report.rows["schedule_dispatches"] += int(
                conn.execute(
                    select(func.count()).select_from(_runless_dispatches(cutoff).subquery())
                ).scalar_one()
            )
        return report

    while True:
        with engine.begin() as conn:
            ids = [
                str(run_id)
                for run_id in conn.execute(
                    _old_runs(cutoff).order_by(pipeline_runs.c.ended_at).limit(batch_size)
                ).scalars()
            ]
            if not ids:
                break
            for name, statement in _child_deletes(ids):
                report.rows[name] += conn.execute(statement).rowcount
            # The status is checked again: a run can't leave a terminal state, but the
            # guard costs nothing and keeps an active run out of any race.
            report.rows["runs"] += conn.execute(
                delete(pipeline_runs).where(
                    pipeline_runs.c.run_id.in_(ids),
                    pipeline_runs.c.status.in_(sorted(state.TERMINAL)),
                )
            ).rowcount
        report.batches += 1
    while True:
        with engine.begin() as conn:
            rowids = [
                int(i)
                for i in conn.execute(_runless_dispatches(cutoff).limit(batch_size)).scalars()
            ]
            if not rowids:
                break
            report.rows["schedule_dispatches"] += conn.execute(
                delete(dispatches).where(dispatches.c.id.in_(rowids))
            ).rowcount
        report.batches += 1
    return report
