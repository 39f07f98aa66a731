"""Backfill (pipeline/backfill.py): one run per date, resume, re-attach, waiting on 429."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from pipeline.backfill import Backfill, Progress, date_range
from pipeline.bootstrap import Services, build_services
from pipeline.runs.service import DateRangeError, RunRequest
from pipeline.storage import state
from pipeline.storage.db import upgrade
from pipeline_ops_core.errors import QuotaExceededError
from quota.base import AllowAllGate
from tests.support.records import count_runs

TEMPLATE = RunRequest("acme", "test", "unit", "fan_in")
DATES = date_range(date(2026, 1, 1), date(2026, 1, 5))


class Worker:
    """Stands in for the Celery workers: on each poll it finishes the queued runs."""

    def __init__(self, services: Services, fail_dates: set[date] | None = None) -> None:
        self.services, self.fail_dates = services, fail_dates or set()
        self.sleeps: list[float] = []
        self.max_in_flight = 0

    def active(self) -> list[dict[str, Any]]:
        runs = self.services.store.list_runs("acme", limit=500)
        return [r for r in runs if r.status in state.ACTIVE]

    def __call__(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        active = self.active()
        self.max_in_flight = max(self.max_in_flight, len(active))
        for run in active:
            self.services.store.transition(run.run_id, state.RUNNING)
            if run.start_date in self.fail_dates:
                self.services.runs.fail(run.run_id, "step a failed: boom")
            else:
                self.services.runs.complete(run.run_id)


def one_day_runs(services: Services) -> list[tuple[date, str]]:
    runs = services.store.list_runs("acme", limit=500)
    return sorted((r.start_date, r.status) for r in runs)


def test_one_run_per_date_with_bounded_concurrency(services: Services) -> None:
    worker = Worker(services)
    reports: list[str] = []
    job = Backfill(services.runs, TEMPLATE, DATES, concurrency=2, sleep=worker)

    final = job.execute(lambda p: reports.append(p.line()))

    assert one_day_runs(services) == [(d, state.COMPLETED) for d in DATES]
    assert (final.done, final.failed, final.running, final.remaining) == (5, 0, 0, 0)
    assert worker.max_in_flight == 2
    assert reports[-1] == "done 5/5  running 0  failed 0  remaining 0"
    assert any("running 2" in line for line in reports)
    triggers = {r.trigger for r in services.store.list_runs("acme", limit=50)}
    assert triggers == {"backfill"}


def test_a_rerun_skips_completed_dates_and_retries_failed_ones(services: Services) -> None:
    first = Backfill(services.runs, TEMPLATE, DATES, sleep=Worker(services, {date(2026, 1, 3)}))
    result = first.execute(lambda p: None)
    assert result.failed == 1 and result.done == 4
    assert list(first.failed_dates) == [date(2026, 1, 3)]

    events: list[str] = []

    def collect(progress: Progress) -> None:
        events.extend(progress.events)

    again = Backfill(services.runs, TEMPLATE, DATES, sleep=Worker(services)).execute(collect)

    assert (again.done, again.already_done, again.failed) == (5, 4, 0)
    assert "4 date(s) already completed: skipped (--force runs them again)" in events
    runs = one_day_runs(services)
    assert len(runs) == 6  # the four completed dates were not run again
    assert runs.count((date(2026, 1, 3), state.COMPLETED)) == 1
    assert runs.count((date(2026, 1, 3), state.FAILED)) == 1


def test_force_runs_completed_dates_again(services: Services) -> None:
    Backfill(services.runs, TEMPLATE, DATES, sleep=Worker(services)).execute(lambda p: None)
    events: list[str] = []

    again = Backfill(services.runs, TEMPLATE, DATES, force=True, sleep=Worker(services))
    final = again.execute(lambda p: events.extend(p.events))

    assert (final.done, final.already_done, final.failed) == (5, 0, 0)
    assert not any("already completed" in e for e in events)
    assert one_day_runs(services) == sorted([(d, state.COMPLETED) for d in DATES] * 2)


def test_a_range_reaching_past_today_is_refused_before_any_date_starts(
    services: Services, clock
) -> None:
    today = clock.now.date()
    dates = date_range(date(2026, 1, 1), today + timedelta(days=1))
    job = Backfill(services.runs, TEMPLATE, dates, sleep=Worker(services))

    with pytest.raises(DateRangeError, match=f"after today \\({today}, UTC\\)"):
        job.execute(lambda p: None)

    assert count_runs(services.store) == 0


def test_an_interrupted_backfill_reattaches_to_runs_still_active(services: Services) -> None:
    # A previous invocation started 01-01 and was interrupted while it was running.
    left_running = services.runs.start(
        RunRequest("acme", "test", "unit", "fan_in", date(2026, 1, 1), date(2026, 1, 1))
    ).run_id
    events: list[str] = []
    job = Backfill(services.runs, TEMPLATE, DATES[:2], sleep=Worker(services))
    final = job.execute(lambda p: events.extend(p.events))
    assert final.done == 2
    assert f"2026-01-01 already running: run {left_running}" in events
    assert len(one_day_runs(services)) == 2


class FlakyQuota(AllowAllGate):
    """Refuses the first `refusals` reservations with a Retry-After, then admits."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals

    def reserve(self, org_slug: str, run_id: str) -> None:
        if self.refusals:
            self.refusals -= 1
            raise QuotaExceededError("concurrent", 1, 1, retry_after=7)

    def release(self, org_slug: str, run_id: str, succeeded: bool) -> bool:
        return True

    def heartbeat(self, org_slug: str, run_id: str) -> None:
        return None


def test_a_429_waits_for_retry_after_and_goes_on(settings, dispatcher, clock) -> None:
    upgrade(settings.database_url)
    svc = build_services(settings, dispatcher, clock=clock, db_time=clock, gate=FlakyQuota(2))
    svc.orgs.create("acme")
    worker = Worker(svc)
    events: list[str] = []
    final = Backfill(svc.runs, TEMPLATE, DATES[:2], sleep=worker).execute(
        lambda p: events.extend(p.events)
    )
    assert final.done == 2 and len(one_day_runs(svc)) == 2
    assert worker.sleeps.count(7) == 2
    assert sum("quota: concurrent quota exceeded" in e for e in events) == 2


def test_date_range_is_bounded_and_ordered() -> None:
    assert date_range(date(2026, 1, 30), date(2026, 2, 2))[-1] == date(2026, 2, 2)
    with pytest.raises(Exception, match="before"):
        date_range(date(2026, 2, 2), date(2026, 1, 1))
