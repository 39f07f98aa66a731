"""Step attempts in the run store: claim, finish, and read.

An attempt starts and ends in one transaction each, together with the run's
status move, deadline and log line, so a step costs two writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, case, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from pipeline import state
from pipeline.db_time import DbTime
from pipeline.models import pipeline_runs, step_logs
from pipeline.store_ops import (
    INSERT_TRANSITION,
    RUN_STATUS,
    Clock,
    add_line,
    as_utc,
    row_dict,
    settle_cancel,
    stored,
    touch,
)
from pipeline_ops_core.errors import IllegalTransitionError

if TYPE_CHECKING:
    from sqlalchemy import Engine

_BY_ATTEMPT = and_(
    step_logs.c.run_id == bindparam("b_run_id"),
    step_logs.c.step_id == bindparam("b_step_id"),
    step_logs.c.attempt == bindparam("b_attempt"),
)
_STATES = select(
    step_logs.c.step_id, step_logs.c.attempt, step_logs.c.status, step_logs.c.worker
).where(step_logs.c.run_id == bindparam("b_run_id"))
_FINISH_ATTEMPT = update(step_logs).where(_BY_ATTEMPT)
_STARTED_AT = select(step_logs.c.started_at).where(_BY_ATTEMPT)


@dataclass(frozen=True)
class Claim:
    """A started attempt: when it started and how many processes died running it before."""

    started_at: datetime
    lost_workers: int = 0


class StepAttemptsMixin:
    engine: Engine
    clock: Clock
    db_time: DbTime
    text_limit: int

    def attempt_states(self, run_id: str) -> list[tuple[str, int, str, str | None]]:
        """(step_id, attempt, status, worker) of every attempt of a run, in one read."""
        with self.engine.connect() as conn:
            rows = conn.execute(_STATES, {"b_run_id": run_id}).all()
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    def completed_steps(self, run_id: str) -> set[str]:
        return {step for step, _, status, _ in self.attempt_states(run_id) if status == "completed"}

    def step_completed(self, run_id: str, step_id: str) -> bool:
        return step_id in self.completed_steps(run_id)

    def begin_attempt(
        self,
        run_id: str,
        step_id: str,
        attempt: int,
        *,
        exists: bool,
        task_id: str | None,
        worker: str,
        alive_for: float,
        message: str,
        steal_from: str | None = None,
    ) -> Claim | None:
        """Claim an attempt for `worker`, move the run to running, log it; one transaction.

        `exists` says whether this attempt already has a row (a redelivery). The claim and
        the run's deadline last `alive_for` seconds (database clock) unless renewed.
        Returns the claim, or None when another live process holds the claim on this
        very attempt (a duplicate delivery). A redelivered attempt whose holder died
        (claim expired, or `steal_from` names it) restarts the same row and counts the
        lost worker. Raises IllegalTransitionError, changing nothing, if the run is not
        queued or running (ended, or being cancelled).
        """
        now, db = self.clock(), self.db_time
        values = {
            "run_id": run_id,
            "step_id": step_id,
            "attempt": attempt,
            "status": "running",
            "started_at": now,
            "task_id": task_id,
            "worker": worker,
            "claimed_until": db.sql_after(alive_for),
        }
        lost = 0
        try:
            with self.engine.begin() as conn:
                if not exists:
                    conn.execute(insert(step_logs).values(**values, rows_written=0))
                else:
                    free = or_(
                        step_logs.c.status != "running",
                        step_logs.c.claimed_until.is_(None),
                        step_logs.c.claimed_until < db.sql_now(),
                        step_logs.c.worker == worker,
                        step_logs.c.worker == (steal_from or worker),
                    )
                    claim = (
                        update(step_logs)
                        .where(_BY_ATTEMPT, free)
                        .values(
                            status="running",
                            started_at=now,
                            ended_at=None,
                            error=None,
                            task_id=task_id,
                            worker=worker,
                            claimed_until=db.sql_after(alive_for),
                            # A row still `running` was never finished: its process died.
                            lost_workers=step_logs.c.lost_workers
                            + case((step_logs.c.status == "running", 1), else_=0),
                        )
                    )
                    key = {"b_run_id": run_id, "b_step_id": step_id, "b_attempt": attempt}
                    if not conn.execute(claim, key).rowcount:
                        return None
                    lost = int(
                        conn.execute(
                            select(step_logs.c.lost_workers).where(_BY_ATTEMPT), key
                        ).scalar_one()
                    )
                started = conn.execute(
                    update(pipeline_runs)
                    .where(
                        pipeline_runs.c.run_id == run_id,
                        pipeline_runs.c.status == state.QUEUED,
                    )
                    .values(
                        status=state.RUNNING,
                        started_at=now,
                        heartbeat_at=db.sql_now(),
                        deadline_at=db.sql_after(alive_for),
                    )
                ).rowcount
                if started:
                    conn.execute(
                        INSERT_TRANSITION,
                        {
                            "run_id": run_id,
                            "from_status": state.QUEUED,
                            "to_status": state.RUNNING,
                            "at": now,
                            "reason": f"step {step_id} started",
                        },
                    )
                # Only a running run takes a new step: a cancelling one is waiting for its
                # executing steps to stop, not for more to start.
                elif not touch(conn, run_id, db, alive_for, frozenset({state.RUNNING})):
                    status = conn.execute(RUN_STATUS, {"b_run_id": run_id}).scalar()
                    raise IllegalTransitionError(f"run {run_id} is {status}; step not started")
                add_line(
                    conn, run_id, now, "INFO", message, step_id, attempt, limit=self.text_limit
                )
        except IntegrityError:
            return None  # a twin inserted the same attempt a moment earlier
        return Claim(now, lost)

    def finish_attempt(
        self,
        run_id: str,
        step_id: str,
        attempt: int,
        status: str,
        *,
        started_at: datetime | None,
        deadline_in: float | None,
        level: str,
        message: str,
        rows_written: int = 0,
        metrics: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> bool:
        """Close an attempt (completed, retrying, failed or cancelled), move the run's
        deadline to `deadline_in` seconds from now (database clock), log it.

        If the run is being cancelled and this was its last executing step, the run ends
        `cancelled` in the same transaction; returns True then (the caller releases the
        quota slot).
        """
        now = self.clock()
        duration = None
        if started_at is not None:
            duration = int((now - as_utc(started_at)).total_seconds() * 1000)
        with self.engine.begin() as conn:
            conn.execute(
                _FINISH_ATTEMPT,
                {
                    "b_run_id": run_id,
                    "b_step_id": step_id,
                    "b_attempt": attempt,
                    "status": status,
                    "ended_at": now,
                    "duration_ms": duration,
                    "rows_written": rows_written,
                    "metrics": metrics,
                    "error": stored(error, self.text_limit),
                    "claimed_until": None,
                },
            )
            if deadline_in is not None:
                touch(conn, run_id, self.db_time, deadline_in)
            add_line(conn, run_id, now, level, message, step_id, attempt, limit=self.text_limit)
            return settle_cancel(
                conn,
                run_id,
                now,
                self.db_time,
                f"cancelled: step {step_id} stopped ({status})",
                limit=self.text_limit,
            )

    def renew_claim(
        self, run_id: str, step_id: str, attempt: int, worker: str, seconds: float
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(step_logs)
                .where(
                    step_logs.c.run_id == run_id,
                    step_logs.c.step_id == step_id,
                    step_logs.c.attempt == attempt,
                    step_logs.c.worker == worker,
                    step_logs.c.status == "running",
                )
                .values(claimed_until=self.db_time.sql_after(seconds))
            )

    def attempt_started_at(self, run_id: str, step_id: str, attempt: int) -> datetime | None:
        key = {"b_run_id": run_id, "b_step_id": step_id, "b_attempt": attempt}
        with self.engine.connect() as conn:
            return as_utc(conn.execute(_STARTED_AT, key).scalar())

    def step_attempts(self, run_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    select(step_logs).where(step_logs.c.run_id == run_id).order_by(step_logs.c.id)
                )
                .mappings()
                .all()
            )
        return [row_dict(r) for r in rows]
