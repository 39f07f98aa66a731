"""The run store: runs, step attempts, transitions and log lines in the metadata DB.

Status changes are single conditional UPDATEs (`WHERE status IN allowed`), so two
processes racing to move the same run can't both win, and an illegal move raises.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, case, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from pipeline.storage import counters, state
from pipeline.storage.db_time import DATABASE_TIME, DbTime
from pipeline.storage.records import (
    Claim,
    LogLine,
    LostWorkerAttempt,
    RunPlan,
    RunRecord,
    StepAttempt,
    Transition,
)
from pipeline.storage.statements import (
    ATTEMPT_STARTED_AT,
    ATTEMPT_STATES,
    BY_ATTEMPT,
    DEFAULT_TEXT_LIMIT,
    FINISH_ATTEMPT,
    INSERT_TRANSITION,
    RUN_STATUS,
    Clock,
    add_line,
    as_utc,
    move,
    row_dict,
    settle_cancel,
    stored,
    touch,
    utcnow,
)
from pipeline.storage.tables import (
    log_lines,
    organizations,
    pipeline_runs,
    state_transitions,
    step_logs,
)
from pipeline_ops_core.errors import (
    ConflictError,
    IllegalTransitionError,
    NotFoundError,
    TerminalError,
)

# Run ids are UUIDs; a prefix this long is unique among millions of runs in practice.
FULL_RUN_ID_LENGTH = 36
MIN_RUN_ID_PREFIX = 8
MAX_PREFIX_MATCHES = 10
_RUN_ID_PREFIX = re.compile(r"[0-9a-f\-]+")


class RunIdError(TerminalError):
    """A run id prefix that is too short, or that more than one run shares."""

    code = "invalid_run_id"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


# A run's columns but its plan: the listings and the reaper's scans don't need the plan,
# the largest column.
_WITHOUT_PLAN = [c for c in pipeline_runs.c if c.name != "plan"]


class SqlRunStore:
    def __init__(
        self,
        engine: Engine,
        clock: Clock = utcnow,
        *,
        db_time: DbTime = DATABASE_TIME,
        text_limit: int = DEFAULT_TEXT_LIMIT,
    ) -> None:
        self.engine = engine
        # Timestamps for the record (created, started, ended, log lines) come from `clock`;
        # every deadline, claim and heartbeat is written and compared in `db_time`, the
        # database's clock, so processes with skewed clocks agree on them.
        self.clock = clock
        self.db_time = db_time
        self.text_limit = text_limit

    # -- organizations -------------------------------------------------------------------

    def create_org(self, org_slug: str, name: str, key_prefix: str, key_hash: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(organizations).values(
                    org_slug=org_slug,
                    name=name,
                    api_key_prefix=key_prefix,
                    api_key_hash=key_hash,
                    created_at=self.clock(),
                )
            )

    def get_org(self, org_slug: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(organizations).where(organizations.c.org_slug == org_slug))
                .mappings()
                .first()
            )
        return row_dict(row) if row else None

    def org_by_key_prefix(self, prefix: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(organizations).where(organizations.c.api_key_prefix == prefix))
                .mappings()
                .first()
            )
        return row_dict(row) if row else None

    def list_orgs(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    select(
                        organizations.c.org_slug, organizations.c.name, organizations.c.created_at
                    ).order_by(organizations.c.org_slug)
                )
                .mappings()
                .all()
            )
        return [row_dict(r) for r in rows]

    # -- runs ------------------------------------------------------------------------------

    def create_run(
        self, values: dict[str, Any], reason: str = "run requested", deadline_in: float = 0
    ) -> RunRecord:
        """Insert a `pending` run; ConflictError if an active run holds the same key.

        The reaper fails it if it is still pending (its process died) `deadline_in`
        seconds from now, in the database's clock.
        """
        now = self.clock()
        # `trigger` as the column's server default would fill it, so the record is complete.
        row = {"trigger": "api", **values, "status": state.PENDING, "created_at": now}
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(pipeline_runs).values(
                        **row, deadline_at=self.db_time.sql_after(deadline_in)
                    )
                )
                conn.execute(
                    insert(state_transitions).values(
                        run_id=row["run_id"],
                        from_status=None,
                        to_status=state.PENDING,
                        at=now,
                        reason=reason,
                    )
                )
        except IntegrityError:
            conflict = self.key_conflict(values["idempotency_key"])
            if conflict is None:
                raise
            raise conflict from None
        return RunRecord.from_row(row)

    def active_run(self, idempotency_key: str) -> tuple[str, str] | None:
        """(run_id, status) of the active run holding `idempotency_key`, if any."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(pipeline_runs.c.run_id, pipeline_runs.c.status).where(
                    pipeline_runs.c.idempotency_key == idempotency_key,
                    pipeline_runs.c.status.in_(state.ACTIVE),
                )
            ).first()
        return (row[0], row[1]) if row else None

    def key_conflict(self, idempotency_key: str) -> ConflictError | None:
        """The 409 for a key an active run holds (None if none does)."""
        found = self.active_run(idempotency_key)
        if found is None:
            return None
        run_id, status = found
        if status == state.CANCELLING:
            return ConflictError(
                f"run {run_id} for the same org, pipeline, credential and dates is being "
                "cancelled; it keeps this key until its running step has stopped. Retry in "
                "a few seconds.",
                existing_run_id=run_id,
            )
        return ConflictError(
            "a run for the same org, pipeline, credential and dates is already active",
            existing_run_id=run_id,
        )

    def run_status(self, run_id: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(pipeline_runs.c.status).where(pipeline_runs.c.run_id == run_id)
            ).scalar()

    def get_run(self, run_id: str, org_slug: str | None = None) -> RunRecord | None:
        query = select(pipeline_runs).where(pipeline_runs.c.run_id == run_id)
        if org_slug is not None:
            query = query.where(pipeline_runs.c.org_slug == org_slug)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return RunRecord.from_row(row) if row else None

    def resolve_run_id(self, ref: str, org_slug: str | None = None) -> str:
        """The full id of the run `ref` names: a full id, or a unique prefix of at least
        MIN_RUN_ID_PREFIX characters (as the demo and `run` print them), within the org.

        NotFoundError if nothing matches (another org's run included), RunIdError if the
        prefix is too short or matches more than one run.
        """
        if len(ref) >= FULL_RUN_ID_LENGTH:
            return ref
        if len(ref) < MIN_RUN_ID_PREFIX:
            raise RunIdError(
                f"run id {ref!r} is too short: give the full id or its first "
                f"{MIN_RUN_ID_PREFIX} characters or more"
            )
        if _RUN_ID_PREFIX.fullmatch(ref) is None:
            raise NotFoundError(f"run {ref} not found")
        # The prefix is hex digits and dashes only, so it has no LIKE wildcard in it.
        query = select(pipeline_runs.c.run_id).where(pipeline_runs.c.run_id.like(f"{ref}%"))
        if org_slug is not None:
            query = query.where(pipeline_runs.c.org_slug == org_slug)
        with self.engine.connect() as conn:
            found = list(conn.execute(query.limit(MAX_PREFIX_MATCHES + 1)).scalars())
        if not found:
            raise NotFoundError(f"run {ref} not found")
        if len(found) > 1:
            count = f"{len(found)}" if len(found) <= MAX_PREFIX_MATCHES else "many"
            raise RunIdError(
                f"run id prefix {ref!r} matches {count} runs; give more characters of the id",
                code="ambiguous_run_id",
            )
        return str(found[0])

    def transition(
        self, run_id: str, to_status: str, reason: str | None = None, **fields: Any
    ) -> bool:
        """Move a run to `to_status`. Returns False if it is already there; raises if illegal."""
        with self.engine.begin() as conn:
            return (
                move(conn, run_id, to_status, reason, self.clock(), limit=self.text_limit, **fields)
                is not None
            )

    def admit(
        self,
        run_id: str,
        validating_at: datetime,
        plan: RunPlan | None,
        deadline_in: float,
        error: str | None = None,
    ) -> None:
        """Record validation in one transaction: pending -> validating -> queued (or failed).

        A queued run must be picked up within `deadline_in` seconds (database clock).
        """
        limit = self.text_limit
        with self.engine.begin() as conn:
            move(conn, run_id, state.VALIDATING, "admitted", validating_at, limit=limit)
            if error is None:
                move(
                    conn,
                    run_id,
                    state.QUEUED,
                    "validated and enqueued",
                    self.clock(),
                    limit=limit,
                    plan=plan.to_json() if plan is not None else None,
                    deadline_at=self.db_time.sql_after(deadline_in),
                )
            else:
                move(
                    conn,
                    run_id,
                    state.FAILED,
                    error,
                    self.clock(),
                    limit=limit,
                    error_message=error,
                )

    def touch(self, run_id: str, seconds: float) -> str | None:
        """Heartbeat: the run is alive; the reaper leaves it alone for `seconds` more.

        Returns the run's status, so the heartbeat of a step whose run is being cancelled
        (or has ended) learns it.
        """
        with self.engine.begin() as conn:
            touch(conn, run_id, self.db_time, seconds)
            return conn.execute(
                select(pipeline_runs.c.status).where(pipeline_runs.c.run_id == run_id)
            ).scalar()

    def request_cancel(self, run_id: str, reason: str) -> tuple[str | None, bool]:
        """Cancel a run in one transaction: (the status it left, whether it ended now).

        A run no step is executing ends `cancelled` at once. A running one moves to
        `cancelling`: it keeps its slot and key, and its steps may no longer write, until
        the executing step stops (`settle_cancel`). Returns (None, False) if the run was
        already cancelling.
        """
        now, limit = self.clock(), self.text_limit
        with self.engine.begin() as conn:
            # Writes first, reads after: SQLite takes its write lock at the first statement.
            try:
                left = move(
                    conn,
                    run_id,
                    state.CANCELLING,
                    reason,
                    now,
                    limit=limit,
                    only_from=frozenset({state.RUNNING}),
                )
            except IllegalTransitionError:
                left = move(
                    conn,
                    run_id,
                    state.CANCELLED,
                    reason,
                    now,
                    limit=limit,
                    only_from=frozenset({state.PENDING, state.VALIDATING, state.QUEUED}),
                )
                return left, left is not None
            if left is None:
                return None, False  # already cancelling
            ended = settle_cancel(
                conn, run_id, now, self.db_time, "cancelled: no step was executing", limit=limit
            )
            return left, ended

    def settle_cancel(self, run_id: str, reason: str, force: bool = False) -> bool:
        """End a cancelling run once no step of it executes any more (see statements.py)."""
        with self.engine.begin() as conn:
            return settle_cancel(
                conn, run_id, self.clock(), self.db_time, reason, force=force, limit=self.text_limit
            )

    def cancelling_runs(self) -> list[RunRecord]:
        """Runs being cancelled (without their plans)."""
        query = select(*_WITHOUT_PLAN).where(pipeline_runs.c.status == state.CANCELLING)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [RunRecord.from_row(r) for r in rows]

    def runs_losing_workers(self, max_lost: int) -> list[LostWorkerAttempt]:
        """Active runs with an attempt whose worker process died `max_lost` times or more."""
        query = (
            select(
                pipeline_runs.c.run_id,
                pipeline_runs.c.org_slug,
                step_logs.c.step_id,
                step_logs.c.lost_workers,
            )
            .join(step_logs, step_logs.c.run_id == pipeline_runs.c.run_id)
            .where(
                pipeline_runs.c.status.in_(state.ACTIVE),
                step_logs.c.status == "running",
                step_logs.c.lost_workers >= max_lost,
            )
        )
        with self.engine.connect() as conn:
            return [LostWorkerAttempt(*r) for r in conn.execute(query).all()]

    def overdue_runs(self) -> list[RunRecord]:
        """Active runs whose deadline passed, in the database's clock (without their plans)."""
        query = select(*_WITHOUT_PLAN).where(
            pipeline_runs.c.status.in_(state.ACTIVE),
            pipeline_runs.c.deadline_at.is_not(None),
            pipeline_runs.c.deadline_at < self.db_time.sql_now(),
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [RunRecord.from_row(r) for r in rows]

    def list_runs(
        self,
        org_slug: str,
        limit: int = 50,
        cursor: tuple[datetime, str] | None = None,
        status: str | None = None,
        pipeline_id: str | None = None,
    ) -> list[RunRecord]:
        """Newest first, keyset-paginated on (created_at, run_id); without their plans."""
        query = select(*_WITHOUT_PLAN).where(pipeline_runs.c.org_slug == org_slug)
        if status:
            query = query.where(pipeline_runs.c.status == status)
        if pipeline_id:
            query = query.where(pipeline_runs.c.pipeline_id == pipeline_id)
        if cursor is not None:
            created, run_id = cursor
            query = query.where(
                or_(
                    pipeline_runs.c.created_at < created,
                    and_(pipeline_runs.c.created_at == created, pipeline_runs.c.run_id < run_id),
                )
            )
        query = query.order_by(
            pipeline_runs.c.created_at.desc(), pipeline_runs.c.run_id.desc()
        ).limit(limit)
        with self.engine.connect() as conn:
            return [RunRecord.from_row(r) for r in conn.execute(query).mappings().all()]

    def transitions(self, run_id: str) -> list[Transition]:
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    select(state_transitions)
                    .where(state_transitions.c.run_id == run_id)
                    .order_by(state_transitions.c.id)
                )
                .mappings()
                .all()
            )
        return [Transition.from_row(r) for r in rows]

    # -- step attempts ----------------------------------------------------------------------

    def attempt_states(self, run_id: str) -> list[tuple[str, int, str, str | None]]:
        """(step_id, attempt, status, worker) of every attempt of a run, in one read."""
        with self.engine.connect() as conn:
            rows = conn.execute(ATTEMPT_STATES, {"b_run_id": run_id}).all()
        return [(r[0], r[1], r[2], r[3]) for r in rows]

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
                        .where(BY_ATTEMPT, free)
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
                            select(step_logs.c.lost_workers).where(BY_ATTEMPT), key
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
        started = as_utc(started_at)
        if started is not None:
            duration = int((now - started).total_seconds() * 1000)
        with self.engine.begin() as conn:
            conn.execute(
                FINISH_ATTEMPT,
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
            ended = settle_cancel(
                conn,
                run_id,
                now,
                self.db_time,
                f"cancelled: step {step_id} stopped ({status})",
                limit=self.text_limit,
            )
            # Last: the shared counter row stays locked (PostgreSQL) for the shortest time.
            counters.count_step_end(conn, status, duration)
            return ended

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
            return as_utc(conn.execute(ATTEMPT_STARTED_AT, key).scalar())

    def step_attempts(self, run_id: str) -> list[StepAttempt]:
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    select(step_logs).where(step_logs.c.run_id == run_id).order_by(step_logs.c.id)
                )
                .mappings()
                .all()
            )
        return [StepAttempt.from_row(r) for r in rows]

    # -- log lines -------------------------------------------------------------------------

    def add_line(
        self,
        run_id: str,
        level: str,
        message: str,
        step_id: str | None = None,
        attempt: int | None = None,
    ) -> None:
        with self.engine.begin() as conn:
            add_line(
                conn, run_id, self.clock(), level, message, step_id, attempt, limit=self.text_limit
            )

    def lines(self, run_id: str) -> list[LogLine]:
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    select(log_lines).where(log_lines.c.run_id == run_id).order_by(log_lines.c.id)
                )
                .mappings()
                .all()
            )
        return [LogLine.from_row(r) for r in rows]
