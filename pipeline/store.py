"""The run store: runs, step attempts, transitions and log lines in the metadata DB.

Status changes are single conditional UPDATEs (`WHERE status IN allowed`), so two
processes racing to move the same run can't both win, and an illegal move raises.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, func, insert, or_, select
from sqlalchemy.exc import IntegrityError

from errors import ConflictError, NotFoundError, TerminalError
from pipeline import state
from pipeline.models import log_lines, organizations, pipeline_runs, state_transitions
from pipeline.store_attempts import StepAttemptsMixin
from pipeline.store_ops import Clock, add_line, move, row_dict, touch, utcnow

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


class RunStore(StepAttemptsMixin):
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
        return row_dict(row) if row else None

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
            return move(conn, run_id, to_status, reason, self.clock(), **fields) is not None

    def admit(
        self,
        run_id: str,
        validating_at: datetime,
        plan: dict[str, Any] | None,
        deadline_at: datetime,
        error: str | None = None,
    ) -> None:
        """Record validation in one transaction: pending -> validating -> queued (or failed)."""
        with self.engine.begin() as conn:
            move(conn, run_id, state.VALIDATING, "admitted", validating_at)
            if error is None:
                move(
                    conn,
                    run_id,
                    state.QUEUED,
                    "validated and enqueued",
                    self.clock(),
                    plan=plan,
                    deadline_at=deadline_at,
                )
            else:
                move(conn, run_id, state.FAILED, error, self.clock(), error_message=error)

    def touch(self, run_id: str, deadline_at: datetime) -> None:
        """Heartbeat: the run is alive; the reaper leaves it alone until `deadline_at`."""
        with self.engine.begin() as conn:
            touch(conn, run_id, self.clock(), deadline_at)

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
                        pipeline_runs.c.status.in_(state.ACTIVE),
                        pipeline_runs.c.deadline_at.is_not(None),
                        pipeline_runs.c.deadline_at < now,
                    )
                )
                .mappings()
                .all()
            )
        return [row_dict(r) for r in rows]

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
            return [row_dict(r) for r in conn.execute(query).mappings().all()]

    def count_runs(self, org_slug: str | None = None) -> int:
        query = select(func.count()).select_from(pipeline_runs)
        if org_slug:
            query = query.where(pipeline_runs.c.org_slug == org_slug)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

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
        return [row_dict(r) for r in rows]

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
            add_line(conn, run_id, self.clock(), level, message, step_id, attempt)

    def lines(self, run_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    select(log_lines).where(log_lines.c.run_id == run_id).order_by(log_lines.c.id)
                )
                .mappings()
                .all()
            )
        return [row_dict(r) for r in rows]
