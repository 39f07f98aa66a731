"""Small test doubles shared by the suites: a hand-moved clock and a dispatcher that
enqueues nothing (for tests about admission, quota or scheduling, not execution)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

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


class NullDispatcher:
    """Runs are admitted and recorded, but nothing is sent to Celery."""

    def enqueue(self, run_id: str, plan: dict[str, Any]) -> None:
        return None

    def revoke(self, run_id: str, plan: dict[str, Any]) -> None:
        return None
