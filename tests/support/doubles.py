"""Small test doubles shared by the suites: a hand-moved clock, a dispatcher that enqueues
nothing (for tests about admission, quota or scheduling, not execution) and one that
records what it was handed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, literal
from sqlalchemy.sql.elements import ColumnElement

T0 = datetime(2026, 1, 5, 10, 0, 0, tzinfo=UTC)


class ManualClock:
    """A clock the test moves by hand; every component that takes `clock=` accepts it."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now

    # As the run store's database clock (pipeline/storage/db_time.py): deadlines and claims follow
    # this clock too, so a test moves time for the database as well (`db_time=clock`).
    def sql_now(self) -> ColumnElement[datetime]:
        return self.sql_after(0)

    def sql_after(self, seconds: float) -> ColumnElement[datetime]:
        return literal(self.now + timedelta(seconds=seconds), DateTime(timezone=True))


class NullDispatcher:
    """Runs are admitted and recorded, but nothing is sent to Celery."""

    def check(self) -> None:
        return None

    def enqueue(self, run_id: str, plan: dict[str, Any]) -> None:
        return None

    def revoke(self, run_id: str, plan: dict[str, Any]) -> None:
        return None


class RecordingDispatcher:
    """Records what the run service hands to Celery; `fail_with` makes enqueue raise."""

    def __init__(self) -> None:
        self.enqueued: list[tuple[str, dict[str, Any]]] = []
        self.revoked: list[tuple[str, dict[str, Any]]] = []
        self.fail_with: Exception | None = None

    def check(self) -> None:
        return None

    def enqueue(self, run_id: str, plan: dict[str, Any]) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.enqueued.append((run_id, plan))

    def revoke(self, run_id: str, plan: dict[str, Any]) -> None:
        self.revoked.append((run_id, plan))
