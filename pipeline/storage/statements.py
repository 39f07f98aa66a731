"""Statements shared by the run store's transactions: status moves, deadlines, log lines.

Each takes an open connection, so callers can group several into one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, exists, insert, select, update

from pipeline.observability.redact import cap_text, redact
from pipeline.storage import counters, state
from pipeline.storage.db_time import DbTime
from pipeline.storage.tables import log_lines, pipeline_runs, state_transitions, step_logs
from pipeline_ops_core.errors import IllegalTransitionError

Clock = Callable[[], datetime]
# Stored text (error messages, log lines, transition reasons) longer than this is cut.
DEFAULT_TEXT_LIMIT = 4096


def stored(text: str | None, limit: int = DEFAULT_TEXT_LIMIT) -> str | None:
    """Text as it may be stored: secrets masked first (so a cut can't leave half a secret
    behind), then capped."""
    return cap_text(redact(text), limit)


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def row_dict(mapping: Any) -> dict[str, Any]:
    out = dict(mapping)
    for key, value in out.items():
        if isinstance(value, datetime):
            out[key] = as_utc(value)
    return out


# Statements built once with bind parameters: building `.values(**kw)` per call costs
# more than executing the statement on SQLite.
INSERT_TRANSITION = insert(state_transitions)
_INSERT_LINE = insert(log_lines)
RUN_STATUS = select(pipeline_runs.c.status).where(pipeline_runs.c.run_id == bindparam("b_run_id"))


# The step-attempt statements, bound per call.
BY_ATTEMPT = and_(
    step_logs.c.run_id == bindparam("b_run_id"),
    step_logs.c.step_id == bindparam("b_step_id"),
    step_logs.c.attempt == bindparam("b_attempt"),
)
ATTEMPT_STATES = select(
    step_logs.c.step_id, step_logs.c.attempt, step_logs.c.status, step_logs.c.worker
).where(step_logs.c.run_id == bindparam("b_run_id"))
FINISH_ATTEMPT = update(step_logs).where(BY_ATTEMPT)
ATTEMPT_STARTED_AT = select(step_logs.c.started_at).where(BY_ATTEMPT)


def move(
    conn: Connection,
    run_id: str,
    to_status: str,
    reason: str | None,
    now: datetime,
    *,
    limit: int = DEFAULT_TEXT_LIMIT,
    only_from: frozenset[str] | None = None,
    **fields: Any,
) -> str | None:
    """Move a run inside `conn`'s transaction; the from-status it left, or None if already there.

    Each try is a conditional UPDATE, so the statement that wins also tells us the
    state it left, and SQLite takes its write lock at the first statement instead of
    failing to upgrade a read transaction.
    """
    allowed = state.allowed_from(to_status)
    if only_from is not None:
        allowed = allowed & only_from
    values = dict(fields)
    if "error_message" in values:
        values["error_message"] = stored(values["error_message"], limit)
    if to_status == state.RUNNING:
        values.setdefault("started_at", now)
    if to_status in state.TERMINAL:
        values.setdefault("ended_at", now)
    for from_status in sorted(allowed):
        result = conn.execute(
            update(pipeline_runs)
            .where(pipeline_runs.c.run_id == run_id, pipeline_runs.c.status == from_status)
            .values(status=to_status, **values)
        )
        if result.rowcount:
            conn.execute(
                INSERT_TRANSITION,
                {
                    "run_id": run_id,
                    "from_status": from_status,
                    "to_status": to_status,
                    "at": now,
                    "reason": stored(reason, limit),
                },
            )
            if to_status in state.TERMINAL:
                counters.count_run_end(conn, run_id, to_status, values["ended_at"])
            return from_status
    current = conn.execute(RUN_STATUS, {"b_run_id": run_id}).scalar()
    if current is None:
        raise IllegalTransitionError(f"run {run_id} does not exist")
    if current == to_status:
        return None
    raise IllegalTransitionError(f"run {run_id}: illegal transition {current} -> {to_status}")


def touch(
    conn: Connection,
    run_id: str,
    db_time: DbTime,
    seconds: float,
    statuses: frozenset[str] = state.ACTIVE,
) -> int:
    """Heartbeat: the run's deadline moves to the database's now + `seconds`."""
    return conn.execute(
        update(pipeline_runs)
        .where(pipeline_runs.c.run_id == run_id, pipeline_runs.c.status.in_(statuses))
        .values(heartbeat_at=db_time.sql_now(), deadline_at=db_time.sql_after(seconds))
    ).rowcount


def live_attempt(run_id: str, db_time: DbTime) -> Any:
    """EXISTS: an attempt of the run is `running` under a claim that has not expired."""
    return exists().where(
        step_logs.c.run_id == run_id,
        step_logs.c.status == "running",
        step_logs.c.claimed_until.is_not(None),
        step_logs.c.claimed_until >= db_time.sql_now(),
    )


def settle_cancel(
    conn: Connection,
    run_id: str,
    now: datetime,
    db_time: DbTime,
    reason: str,
    *,
    force: bool = False,
    limit: int = DEFAULT_TEXT_LIMIT,
) -> bool:
    """End a `cancelling` run `cancelled` once none of its steps is executing any more.

    An attempt still marked `running` under an expired claim belongs to a process that
    stopped without saying so; it is closed as `cancelled` with the run. `force` (the
    reaper, once the run's own deadline passed) closes live-looking claims too. Returns
    whether this call ended the run (its caller then releases the quota slot).
    """
    runs = pipeline_runs.c
    guard = [runs.run_id == run_id, runs.status == state.CANCELLING]
    if not force:
        guard.append(~live_attempt(run_id, db_time))
    moved = conn.execute(
        update(pipeline_runs).where(and_(*guard)).values(status=state.CANCELLED, ended_at=now)
    ).rowcount
    if not moved:
        return False
    conn.execute(
        update(step_logs)
        .where(step_logs.c.run_id == run_id, step_logs.c.status == "running")
        .values(
            status=state.CANCELLED,
            ended_at=now,
            claimed_until=None,
            error="stopped: the run was cancelled",
        )
    )
    conn.execute(
        INSERT_TRANSITION,
        {
            "run_id": run_id,
            "from_status": state.CANCELLING,
            "to_status": state.CANCELLED,
            "at": now,
            "reason": stored(reason, limit),
        },
    )
    counters.count_run_end(conn, run_id, state.CANCELLED, now)
    return True


def add_line(
    conn: Connection,
    run_id: str,
    now: datetime,
    level: str,
    message: str,
    step_id: str | None = None,
    attempt: int | None = None,
    *,
    limit: int = DEFAULT_TEXT_LIMIT,
) -> None:
    conn.execute(
        _INSERT_LINE,
        {
            "run_id": run_id,
            "ts": now,
            "level": level,
            "step_id": step_id,
            "attempt": attempt,
            "message": stored(message, limit) or "",
        },
    )
