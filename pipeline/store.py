"""The run store: runs, step attempts, transitions and log lines in the metadata DB.

Status changes are single conditional UPDATEs (`WHERE status IN allowed`), so two
processes racing to move the same run can't both win, and an illegal move raises.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from errors import ConflictError, IllegalTransitionError
from pipeline import state
from pipeline.models import log_lines, organizations, pipeline_runs, state_transitions, step_logs
from pipeline.redact import redact

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _row(mapping: Any) -> dict[str, Any]:
    out = dict(mapping)
    for key, value in out.items():
        if isinstance(value, datetime):
            out[key] = as_utc(value)
    return out


class RunStore:
    def __init__(self, engine: Engine, clock: Clock = utcnow) -> None:
        self.engine = engine
        self.clock = clock

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
        return _row(row) if row else None

    def org_by_key_prefix(self, prefix: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(organizations).where(organizations.c.api_key_prefix == prefix))
                .mappings()
                .first()
            )
        return _row(row) if row else None

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
        return [_row(r) for r in rows]

    # -- runs ------------------------------------------------------------------------------

    def create_run(self, values: dict[str, Any], reason: str = "run requested") -> dict[str, Any]:
        """Insert a `pending` run; ConflictError if an active run holds the same key."""
        now = self.clock()
        row = {**values, "status": state.PENDING, "created_at": now}
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(pipeline_runs).values(**row))
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
            existing = self.find_active_run(values["idempotency_key"])
            if existing is None:
                raise
            raise ConflictError(
                "a run for the same org, pipeline, credential and dates is already active",
                existing_run_id=existing,
            ) from None
        return row

    def find_active_run(self, idempotency_key: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(pipeline_runs.c.run_id).where(
                    pipeline_runs.c.idempotency_key == idempotency_key,
                    pipeline_runs.c.status.in_(state.ACTIVE),
                )
            ).scalar()

    def get_run(self, run_id: str, org_slug: str | None = None) -> dict[str, Any] | None:
        query = select(pipeline_runs).where(pipeline_runs.c.run_id == run_id)
        if org_slug is not None:
            query = query.where(pipeline_runs.c.org_slug == org_slug)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return _row(row) if row else None

    def transition(
        self, run_id: str, to_status: str, reason: str | None = None, **fields: Any
    ) -> bool:
        """Move a run to `to_status`. Returns False if it is already there; raises if illegal."""
        allowed = state.ALLOWED_FROM.get(to_status)
        if allowed is None:
            raise IllegalTransitionError(f"unknown status {to_status!r}")
        now = self.clock()
        values = dict(fields)
        if "error_message" in values:
            values["error_message"] = redact(values["error_message"])
        if to_status == state.RUNNING:
            values.setdefault("started_at", now)
        if to_status in state.TERMINAL:
            values.setdefault("ended_at", now)
        with self.engine.begin() as conn:
            current = conn.execute(
                select(pipeline_runs.c.status).where(pipeline_runs.c.run_id == run_id)
            ).scalar()
            if current is None:
                raise IllegalTransitionError(f"run {run_id} does not exist")
            result = conn.execute(
                update(pipeline_runs)
                .where(pipeline_runs.c.run_id == run_id, pipeline_runs.c.status.in_(allowed))
                .values(status=to_status, **values)
            )
            if result.rowcount == 0:
                current = conn.execute(
                    select(pipeline_runs.c.status).where(pipeline_runs.c.run_id == run_id)
                ).scalar()
                if current == to_status:
                    return False
                raise IllegalTransitionError(
                    f"run {run_id}: illegal transition {current} -> {to_status}"
                )
            conn.execute(
                insert(state_transitions).values(
                    run_id=run_id,
                    from_status=current,
                    to_status=to_status,
                    at=now,
                    reason=redact(reason),
                )
            )
        return True

    def update_run(self, run_id: str, **fields: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(pipeline_runs).where(pipeline_runs.c.run_id == run_id).values(**fields)
            )

    def touch(self, run_id: str, deadline_at: datetime) -> None:
        """Heartbeat: the run is alive; the reaper leaves it alone until `deadline_at`."""
        with self.engine.begin() as conn:
            conn.execute(
                update(pipeline_runs)
                .where(pipeline_runs.c.run_id == run_id, pipeline_runs.c.status.in_(state.ACTIVE))
                .values(heartbeat_at=self.clock(), deadline_at=deadline_at)
            )

    def overdue_runs(self, now: datetime | None = None) -> list[dict[str, Any]]:
        now = now or self.clock()
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    select(
                        pipeline_runs.c.run_id,
                        pipeline_runs.c.org_slug,
                        pipeline_runs.c.status,
                        pipeline_runs.c.heartbeat_at,
                        pipeline_runs.c.deadline_at,
                    ).where(
                        pipeline_runs.c.status.in_((state.QUEUED, state.RUNNING)),
                        pipeline_runs.c.deadline_at.is_not(None),
                        pipeline_runs.c.deadline_at < now,
                    )
                )
                .mappings()
                .all()
            )
        return [_row(r) for r in rows]

    def list_runs(
        self,
        org_slug: str,
        limit: int = 50,
        cursor: tuple[datetime, str] | None = None,
        status: str | None = None,
        pipeline_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first, keyset-paginated on (created_at, run_id)."""
        cols = [c for c in pipeline_runs.c if c.name != "plan"]
        query = select(*cols).where(pipeline_runs.c.org_slug == org_slug)
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
            return [_row(r) for r in conn.execute(query).mappings().all()]

    def count_runs(self, org_slug: str | None = None) -> int:
        query = select(func.count()).select_from(pipeline_runs)
        if org_slug:
            query = query.where(pipeline_runs.c.org_slug == org_slug)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    # -- steps -----------------------------------------------------------------------------

    def step_completed(self, run_id: str, step_id: str) -> bool:
        with self.engine.connect() as conn:
            return (
                conn.execute(
                    select(step_logs.c.id).where(
                        step_logs.c.run_id == run_id,
                        step_logs.c.step_id == step_id,
                        step_logs.c.status == "completed",
                    )
                ).first()
                is not None
            )

    def claim_step(
        self,
        run_id: str,
        step_id: str,
        attempt: int,
        task_id: str | None,
        worker: str,
        claim_until: datetime,
        steal_from: str | None = None,
    ) -> bool:
        """Record the start of an attempt and claim it for `worker`.

        Returns False when another live process holds the claim for this very
        attempt (a duplicate delivery). A redelivered attempt whose holder died
        (expired claim, or `steal_from` names it) restarts the same row.
        """
        now = self.clock()
        free = or_(
            step_logs.c.status != "running",
            step_logs.c.claimed_until.is_(None),
            step_logs.c.claimed_until < now,
            step_logs.c.worker == worker,
        )
        if steal_from is not None:
            free = or_(free, step_logs.c.worker == steal_from)
        values = {
            "status": "running",
            "started_at": now,
            "ended_at": None,
            "error": None,
            "task_id": task_id,
            "worker": worker,
            "claimed_until": claim_until,
        }
        where = and_(
            step_logs.c.run_id == run_id,
            step_logs.c.step_id == step_id,
            step_logs.c.attempt == attempt,
        )
        try:
            with self.engine.begin() as conn:
                if conn.execute(update(step_logs).where(where, free).values(**values)).rowcount:
                    return True
                if conn.execute(select(step_logs.c.id).where(where)).first() is not None:
                    return False
                conn.execute(
                    insert(step_logs).values(
                        run_id=run_id, step_id=step_id, attempt=attempt, rows_written=0, **values
                    )
                )
        except IntegrityError:
            return False  # a twin inserted the same attempt a moment earlier
        return True

    def step_claim_holder(self, run_id: str, step_id: str, attempt: int) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(step_logs.c.worker).where(
                    step_logs.c.run_id == run_id,
                    step_logs.c.step_id == step_id,
                    step_logs.c.attempt == attempt,
                    step_logs.c.status == "running",
                )
            ).scalar()

    def renew_claim(
        self, run_id: str, step_id: str, attempt: int, worker: str, until: datetime
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(step_logs)
                .where(
                    step_logs.c.run_id == run_id,
                    step_logs.c.step_id == step_id,
                    step_logs.c.attempt == attempt,
                    step_logs.c.worker == worker,
                )
                .values(claimed_until=until)
            )

    def step_finished(
        self,
        run_id: str,
        step_id: str,
        attempt: int,
        status: str,
        rows_written: int = 0,
        metrics: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        now = self.clock()
        with self.engine.begin() as conn:
            started = conn.execute(
                select(step_logs.c.started_at).where(
                    step_logs.c.run_id == run_id,
                    step_logs.c.step_id == step_id,
                    step_logs.c.attempt == attempt,
                )
            ).scalar()
            duration = int((now - as_utc(started)).total_seconds() * 1000) if started else None
            conn.execute(
                update(step_logs)
                .where(
                    step_logs.c.run_id == run_id,
                    step_logs.c.step_id == step_id,
                    step_logs.c.attempt == attempt,
                )
                .values(
                    status=status,
                    ended_at=now,
                    duration_ms=duration,
                    rows_written=rows_written,
                    metrics=metrics,
                    error=redact(error),
                    claimed_until=None,
                )
            )

    def step_attempts(self, run_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    select(step_logs).where(step_logs.c.run_id == run_id).order_by(step_logs.c.id)
                )
                .mappings()
                .all()
            )
        return [_row(r) for r in rows]

    def transitions(self, run_id: str) -> list[dict[str, Any]]:
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
        return [_row(r) for r in rows]

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
            conn.execute(
                insert(log_lines).values(
                    run_id=run_id,
                    ts=self.clock(),
                    level=level,
                    step_id=step_id,
                    attempt=attempt,
                    message=redact(message) or "",
                )
            )

    def lines(self, run_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    select(log_lines).where(log_lines.c.run_id == run_id).order_by(log_lines.c.id)
                )
                .mappings()
                .all()
            )
        return [_row(r) for r in rows]
