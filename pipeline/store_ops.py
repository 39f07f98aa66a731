"""Statements shared by the run store's transactions: status moves, deadlines, log lines.

Each takes an open connection, so callers can group several into one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from errors import IllegalTransitionError
from pipeline import state
from pipeline.models import log_lines, pipeline_runs, state_transitions
from pipeline.redact import redact

Clock = Callable[[], datetime]


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
_TOUCH = (
    update(pipeline_runs)
    .where(
        pipeline_runs.c.run_id == bindparam("b_run_id"), pipeline_runs.c.status.in_(state.ACTIVE)
    )
    .values(heartbeat_at=bindparam("b_now"), deadline_at=bindparam("b_deadline"))
)
RUN_STATUS = select(pipeline_runs.c.status).where(pipeline_runs.c.run_id == bindparam("b_run_id"))


def move(
    conn: Connection,
    run_id: str,
    to_status: str,
    reason: str | None,
    now: datetime,
    **fields: Any,
) -> str | None:
    """Move a run inside `conn`'s transaction; the from-status it left, or None if already there.

    Each try is a conditional UPDATE, so the statement that wins also tells us the
    state it left, and SQLite takes its write lock at the first statement instead of
    failing to upgrade a read transaction.
    """
    allowed = state.ALLOWED_FROM.get(to_status)
    if allowed is None:
        raise IllegalTransitionError(f"unknown status {to_status!r}")
    values = dict(fields)
    if "error_message" in values:
        values["error_message"] = redact(values["error_message"])
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
                    "reason": redact(reason),
                },
            )
            return from_status
    current = conn.execute(RUN_STATUS, {"b_run_id": run_id}).scalar()
    if current is None:
        raise IllegalTransitionError(f"run {run_id} does not exist")
    if current == to_status:
        return None
    raise IllegalTransitionError(f"run {run_id}: illegal transition {current} -> {to_status}")


def touch(conn: Connection, run_id: str, now: datetime, deadline_at: datetime) -> int:
    return conn.execute(
        _TOUCH, {"b_run_id": run_id, "b_now": now, "b_deadline": deadline_at}
    ).rowcount


def add_line(
    conn: Connection,
    run_id: str,
    now: datetime,
    level: str,
    message: str,
    step_id: str | None = None,
    attempt: int | None = None,
) -> None:
    conn.execute(
        _INSERT_LINE,
        {
            "run_id": run_id,
            "ts": now,
            "level": level,
            "step_id": step_id,
            "attempt": attempt,
            "message": redact(message) or "",
        },
    )
