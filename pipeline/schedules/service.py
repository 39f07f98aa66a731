"""Per-org pipeline schedules: the records (ScheduleStore) and the operator API
(ScheduleService: enable, disable, list) used by the CLI and the admin endpoints.

The dispatcher that turns due ticks into runs is pipeline/schedules/dispatch.py.
"""

from __future__ import annotations

# The services' `list` methods shadow the builtin inside their classes.
import builtins
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from sqlalchemy import Engine, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from pipeline.definition.catalog import PipelineCatalog, is_valid_segment
from pipeline.storage import counters
from pipeline.storage.run_store import SqlRunStore
from pipeline.storage.statements import row_dict
from pipeline.storage.tables import dispatches, schedules
from pipeline_ops_core.errors import NotFoundError, TerminalError
from pipeline_ops_core.identifiers import CREDENTIAL_ID_RE

# Catch-up policies for ticks missed while beat was down:
#   latest - run only the latest missed tick (the default),
#   all    - run every missed tick, at most `catch_up_limit` of the most recent,
#   none   - run no missed tick; only a tick that is due right now fires.
CATCH_UP_POLICIES = ("latest", "all", "none")

MAX_CATCH_UP_LIMIT = 1000
DEFAULT_CATCH_UP_LIMIT = 24


def split_path(pipeline_path: str) -> tuple[str, str, str]:
    parts = pipeline_path.strip("/").split("/")
    if len(parts) != 3 or not all(is_valid_segment(p) for p in parts):
        raise TerminalError(f"pipeline must be PROVIDER/DOMAIN/PIPELINE, got {pipeline_path!r}")
    return parts[0], parts[1], parts[2]


def check_cron(cron: str) -> str:
    cron = " ".join(cron.split())
    # croniter also takes 6- and 7-field forms; schedules are 5 fields, minute first.
    if len(cron.split()) != 5 or not croniter.is_valid(cron):
        raise TerminalError(f"bad cron {cron!r}: expected 5 fields (min hour day month dow)")
    return cron


def zone(name: str | None) -> tzinfo:
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TerminalError(f"unknown timezone {name!r} (use an IANA name such as UTC)") from None


def utc(value: datetime) -> datetime:
    # SQLite keeps no offset: everything stored here is UTC, and naive means UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ScheduleStore:
    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self.engine, self.clock = engine, clock

    def get(self, org_slug: str, pipeline_path: str) -> dict[str, Any] | None:
        query = select(schedules).where(
            schedules.c.org_slug == org_slug, schedules.c.pipeline_path == pipeline_path
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return row_dict(row) if row else None

    def list(self, org_slug: str | None = None, enabled_only: bool = False) -> list[dict[str, Any]]:
        query = select(schedules).order_by(schedules.c.org_slug, schedules.c.pipeline_path)
        if org_slug is not None:
            query = query.where(schedules.c.org_slug == org_slug)
        if enabled_only:
            query = query.where(schedules.c.enabled.is_(True))
        with self.engine.connect() as conn:
            return [row_dict(r) for r in conn.execute(query).mappings().all()]

    def save(self, org_slug: str, pipeline_path: str, values: dict[str, Any]) -> dict[str, Any]:
        """Insert or update; a schedule that becomes enabled starts counting from now, so
        enabling never fires ticks from before it (nor from while it was disabled)."""
        now = self.clock()
        current = self.get(org_slug, pipeline_path)
        values = {**values, "updated_at": now}
        if values.get("enabled") and not (current and current["enabled"]):
            values["last_tick"] = now
        with self.engine.begin() as conn:
            if current is None:
                conn.execute(
                    insert(schedules).values(
                        org_slug=org_slug, pipeline_path=pipeline_path, created_at=now, **values
                    )
                )
            else:
                conn.execute(
                    update(schedules).where(schedules.c.id == current["id"]).values(**values)
                )
        saved = self.get(org_slug, pipeline_path)
        assert saved is not None
        return saved

    def advance(self, schedule_id: int, tick: datetime) -> None:
        """Move last_tick forward (never back: a slower twin dispatcher can't rewind it)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(schedules)
                .where(
                    schedules.c.id == schedule_id,
                    or_(schedules.c.last_tick.is_(None), schedules.c.last_tick < utc(tick)),
                )
                .values(last_tick=utc(tick))
            )

    # -- dispatch records ------------------------------------------------------------------

    def claim(self, org_slug: str, pipeline_path: str, tick: datetime, dispatcher: str) -> bool:
        """Insert the tick's dispatch record in its own transaction. Exactly one caller
        per (org, pipeline, tick) gets True: the unique constraint decides, not a lock."""
        now = self.clock()
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(dispatches).values(
                        org_slug=org_slug,
                        pipeline_path=pipeline_path,
                        scheduled_time=utc(tick),
                        status="claimed",
                        dispatcher=dispatcher,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            return False
        return True

    def settle(
        self,
        org_slug: str,
        pipeline_path: str,
        tick: datetime,
        status: str,
        run_id: str | None,
        reason: str | None,
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(dispatches)
                .where(
                    dispatches.c.org_slug == org_slug,
                    dispatches.c.pipeline_path == pipeline_path,
                    dispatches.c.scheduled_time == utc(tick),
                )
                .values(status=status, run_id=run_id, reason=reason, updated_at=self.clock())
            )
            counters.bump(
                conn,
                counters.DISPATCHES,
                org_slug=org_slug,
                pipeline_id=pipeline_path,
                status=status,
            )

    def dispatches(
        self, org_slug: str, pipeline_path: str | None = None, limit: int = 50
    ) -> builtins.list[dict[str, Any]]:
        query = select(dispatches).where(dispatches.c.org_slug == org_slug)
        if pipeline_path is not None:
            query = query.where(dispatches.c.pipeline_path == pipeline_path)
        query = query.order_by(dispatches.c.scheduled_time.desc(), dispatches.c.id.desc())
        with self.engine.connect() as conn:
            rows = conn.execute(query.limit(limit)).mappings().all()
        return [row_dict(r) for r in rows]


class ScheduleService:
    """Validated changes to schedules, for the CLI and the admin API."""

    def __init__(self, store: SqlRunStore, catalog: PipelineCatalog) -> None:
        self.runs_store, self.catalog = store, catalog
        self.store = ScheduleStore(store.engine, store.clock)

    def _pipeline_cron(self, pipeline_path: str) -> str | None:
        return self.catalog.load(*split_path(pipeline_path)).schedule

    def enable(
        self,
        org_slug: str,
        pipeline_path: str,
        *,
        credential_id: str | None = None,
        cron: str | None = None,
        timezone: str | None = None,
        catch_up: str | None = None,
        catch_up_limit: int | None = None,
        enabled: bool = True,
    ) -> dict[str, Any]:
        """Create or replace an org's schedule for a pipeline (options not given reset)."""
        if self.runs_store.get_org(org_slug) is None:
            raise NotFoundError(f"org {org_slug!r} not found")
        pipeline_path = "/".join(split_path(pipeline_path))
        cron = check_cron(cron) if cron else None
        yaml_cron = self._pipeline_cron(pipeline_path)  # NotFoundError if there is no such file
        if enabled and not (cron or yaml_cron):
            raise TerminalError(
                f"pipeline {pipeline_path} has no schedule in its YAML; give a cron"
            )
        zone(timezone)
        credential_id = credential_id or "default"
        if not CREDENTIAL_ID_RE.fullmatch(credential_id):
            raise TerminalError("credential_id must be 1-128 of a-z, 0-9, _ and -")
        catch_up = catch_up or "latest"
        if catch_up not in CATCH_UP_POLICIES:
            raise TerminalError(f"catch_up must be one of {', '.join(CATCH_UP_POLICIES)}")
        limit = DEFAULT_CATCH_UP_LIMIT if catch_up_limit is None else catch_up_limit
        if not 1 <= limit <= MAX_CATCH_UP_LIMIT:
            raise TerminalError(f"catch_up_limit must be between 1 and {MAX_CATCH_UP_LIMIT}")
        saved = self.store.save(
            org_slug,
            pipeline_path,
            {
                "credential_id": credential_id,
                "cron": cron,
                "timezone": timezone or None,
                "catch_up": catch_up,
                "catch_up_limit": limit,
                "enabled": enabled,
            },
        )
        return self.describe(saved)

    def disable(self, org_slug: str, pipeline_path: str) -> dict[str, Any]:
        pipeline_path = "/".join(split_path(pipeline_path))
        current = self.store.get(org_slug, pipeline_path)
        if current is None:
            raise NotFoundError(f"org {org_slug!r} has no schedule for {pipeline_path}")
        return self.describe(self.store.save(org_slug, pipeline_path, {"enabled": False}))

    def list(self, org_slug: str | None = None) -> list[dict[str, Any]]:
        if org_slug is not None and self.runs_store.get_org(org_slug) is None:
            raise NotFoundError(f"org {org_slug!r} not found")
        return [self.describe(row) for row in self.store.list(org_slug)]

    def dispatches(
        self, org_slug: str, pipeline_path: str | None = None, limit: int = 50
    ) -> builtins.list[dict[str, Any]]:
        if pipeline_path is not None:
            pipeline_path = "/".join(split_path(pipeline_path))
        return self.store.dispatches(org_slug, pipeline_path, limit)

    def describe(self, row: dict[str, Any]) -> dict[str, Any]:
        """The row plus the cron in effect and the next tick (None if it can't fire)."""
        try:
            effective = row["cron"] or self._pipeline_cron(row["pipeline_path"])
        except (NotFoundError, TerminalError):
            effective = None
        next_tick = None
        if effective and row["enabled"]:
            now = self.store.clock().astimezone(zone(row["timezone"]))
            next_tick = utc(croniter(effective, now).get_next(datetime))
        return {**row, "effective_cron": effective, "next_tick": next_tick}
