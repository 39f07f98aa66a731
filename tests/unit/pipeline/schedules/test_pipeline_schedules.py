"""Schedules and the beat dispatcher, on a controlled clock (pipeline/schedules/dispatch.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from pipeline.bootstrap import Services, build_services
from pipeline.schedules.dispatch import ScheduleDispatcher, due_ticks
from pipeline.schedules.service import ScheduleService
from pipeline.storage.db import upgrade
from pipeline.storage.records import RunRecord
from pipeline_ops_core.errors import NotFoundError, QuotaExceededError, TerminalError
from quota.base import AllowAllGate
from tests.support.records import count_runs
from tests.support.registry import install_provider_registry

DAILY = """\
pipeline_id: sched_daily
name: Daily at 03:00
provider: sched
domain: unit
schedule: "0 3 * * *"
steps:
  - step_id: only
    ps_type: generic.noop
"""

HALF_PAST = DAILY.replace("sched_daily", "sched_half").replace('"0 3', '"30 3')

UNSCHEDULED = """\
pipeline_id: sched_none
name: No schedule in the YAML
provider: sched
domain: unit
steps:
  - step_id: only
    ps_type: generic.noop
"""


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def pipelines(write_pipeline: Any) -> None:
    write_pipeline("sched/unit/daily", DAILY)
    write_pipeline("sched/unit/half", HALF_PAST)
    write_pipeline("sched/unit/unscheduled", UNSCHEDULED)


@pytest.fixture
def schedules(services: Services, pipelines: None) -> ScheduleService:
    return ScheduleService(services.store, services.catalog)


def dispatcher_for(services: Services, clock: Any) -> ScheduleDispatcher:
    return ScheduleDispatcher.for_runs(services.runs, clock=clock, identity="test:1")


def scheduled_runs(services: Services, org: str = "acme") -> list[RunRecord]:
    runs = services.store.list_runs(org, limit=200)
    return sorted(
        (r for r in runs if r.trigger == "schedule"),
        key=lambda r: (r.pipeline_id, r.start_date),
    )


def test_a_tick_starts_exactly_the_due_runs(services, schedules, clock, dispatcher) -> None:
    clock.now = at("2026-01-05 02:59:30")
    schedules.enable("acme", "sched/unit/daily")  # 03:00 from the YAML
    schedules.enable("acme", "sched/unit/half")  # 03:30 from the YAML
    schedules.enable("acme", "sched/unit/unscheduled", cron="0 * * * *")  # hourly override
    schedules.enable("globex", "sched/unit/daily", cron="15 3 * * *")  # not due yet
    beat = dispatcher_for(services, clock)

    clock.now = at("2026-01-05 03:00:20")
    report = beat.tick()

    runs = scheduled_runs(services)
    assert [(r.pipeline_id, r.start_date) for r in runs] == [
        ("sched_daily", date(2026, 1, 4)),
        ("sched_none", date(2026, 1, 4)),
    ]
    assert report.started == 2 and report.skipped == report.failed == 0
    assert {run_id for run_id, _ in dispatcher.enqueued} == {r.run_id for r in runs}
    assert scheduled_runs(services, "globex") == []
    record = schedules.dispatches("acme", "sched/unit/daily")[0]
    assert record["status"] == "started"
    assert record["scheduled_time"] == at("2026-01-05 03:00:00")
    assert record["run_id"] == runs[0].run_id
    assert runs[0].params == {"scheduled_time": "2026-01-05T03:00:00+00:00"}

    # The same minute again (a second beat, a redelivered task): nothing new.
    clock.now = at("2026-01-05 03:00:50")
    assert beat.tick().started == 0
    assert len(scheduled_runs(services)) == 2

    clock.now = at("2026-01-05 03:30:05")
    beat.tick()
    assert [r.pipeline_id for r in scheduled_runs(services)].count("sched_half") == 1
    clock.now = at("2026-01-05 03:45:00")
    beat.tick()
    assert len(scheduled_runs(services)) == 3
    assert len(scheduled_runs(services, "globex")) == 1


def test_a_second_dispatcher_on_the_same_tick_starts_nothing(services, schedules, clock) -> None:
    clock.now = at("2026-01-05 02:00:00")
    schedules.enable("acme", "sched/unit/daily")
    first, second = dispatcher_for(services, clock), dispatcher_for(services, clock)
    clock.now = at("2026-01-05 03:00:01")
    # `second` read the schedule before `first` advanced it: it must lose on the record.
    row = schedules.store.list(enabled_only=True)[0]
    assert first.tick().started == 1
    report = second.tick()
    assert report.started == 0
    second._dispatch(row, clock.now, report)
    assert report.duplicates == 1
    assert len(scheduled_runs(services)) == 1


def test_a_disabled_schedule_does_not_fire(services, schedules, clock, dispatcher) -> None:
    clock.now = at("2026-01-05 02:00:00")
    schedules.enable("acme", "sched/unit/daily")
    schedules.disable("acme", "sched/unit/daily")
    beat = dispatcher_for(services, clock)
    clock.now = at("2026-01-05 03:00:30")
    assert beat.tick().started == 0
    assert dispatcher.enqueued == []
    assert schedules.dispatches("acme") == []

    # Re-enabled later, it does not make up for the ticks it missed while disabled.
    clock.now = at("2026-01-05 09:00:00")
    schedules.enable("acme", "sched/unit/daily")
    assert beat.tick().started == 0
    clock.now = at("2026-01-06 03:00:00")
    assert beat.tick().started == 1


class RefusingGate(AllowAllGate):
    """The quota says no: the daily limit is used up."""

    def reserve(self, org_slug: str, run_id: str) -> None:
        raise QuotaExceededError("daily", 10, 10, retry_after=3600)

    def release(self, org_slug: str, run_id: str, succeeded: bool) -> bool:
        return True

    def heartbeat(self, org_slug: str, run_id: str) -> None:
        return None


def test_a_quota_refusal_is_recorded_as_a_skipped_tick(
    settings, dispatcher, clock, write_pipeline
) -> None:
    write_pipeline("sched/unit/daily", DAILY)
    upgrade(settings.database_url)
    svc = build_services(settings, dispatcher, clock=clock, db_time=clock, gate=RefusingGate())
    svc.orgs.create("acme")
    clock.now = at("2026-01-05 02:00:00")
    ScheduleService(svc.store, svc.catalog).enable("acme", "sched/unit/daily")
    beat = dispatcher_for(svc, clock)

    clock.now = at("2026-01-05 03:00:10")
    report = beat.tick()

    assert report.skipped == 1 and report.started == 0
    assert dispatcher.enqueued == [] and count_runs(svc.store, "acme") == 0
    record = ScheduleService(svc.store, svc.catalog).dispatches("acme")[0]
    assert record["status"] == "skipped" and record["run_id"] is None
    assert "quota_exceeded" in record["reason"] and "429" in record["reason"]
    assert "daily" in record["reason"]
    # A refused tick is not retried every minute after.
    clock.now = at("2026-01-05 03:01:10")
    assert beat.tick().skipped == 0


def test_a_tick_of_a_provider_that_needs_a_credential_without_one_is_skipped(
    services, clock, dispatcher, configs_dir, write_pipeline
) -> None:
    install_provider_registry(configs_dir)
    write_pipeline("oci/cost/daily", DAILY.replace("sched_daily", "oci_daily").replace(
        "provider: sched\ndomain: unit", "provider: oci\ndomain: cost"))  # fmt: skip
    clock.now = at("2026-01-05 02:00:00")
    ScheduleService(services.store, services.catalog).enable("acme", "oci/cost/daily")

    clock.now = at("2026-01-05 03:00:10")
    report = dispatcher_for(services, clock).tick()

    assert report.skipped == 1 and report.started == 0
    assert dispatcher.enqueued == [] and count_runs(services.store, "acme") == 0
    record = ScheduleService(services.store, services.catalog).dispatches("acme")[0]
    assert record["status"] == "skipped" and record["run_id"] is None
    assert record["reason"].startswith(
        "invalid_credential: pipeline oci/cost/daily needs a credential of provider oci"
    )


def test_missed_ticks_run_only_the_latest_by_default(services, schedules, clock) -> None:
    clock.now = at("2026-01-01 12:00:00")
    schedules.enable("acme", "sched/unit/daily")
    clock.now = at("2026-01-05 08:00:00")  # beat was down for four 03:00 ticks
    report = dispatcher_for(services, clock).tick()
    assert report.started == 1 and report.passed_over == 3
    assert [r.start_date for r in scheduled_runs(services)] == [date(2026, 1, 4)]


def test_catch_up_all_runs_the_missed_ticks_up_to_the_limit(services, schedules, clock) -> None:
    clock.now = at("2026-01-01 12:00:00")
    schedules.enable("acme", "sched/unit/daily", catch_up="all", catch_up_limit=3)
    clock.now = at("2026-01-06 08:00:00")  # five missed ticks, limit three: the latest three
    report = dispatcher_for(services, clock).tick()
    assert report.started == 3 and report.passed_over == 2
    assert [r.start_date for r in scheduled_runs(services)] == [
        date(2026, 1, 3),
        date(2026, 1, 4),
        date(2026, 1, 5),
    ]


def test_catch_up_none_runs_no_missed_tick(services, schedules, clock) -> None:
    clock.now = at("2026-01-01 12:00:00")
    schedules.enable("acme", "sched/unit/daily", catch_up="none")
    clock.now = at("2026-01-03 08:00:00")
    beat = dispatcher_for(services, clock)
    assert beat.tick().started == 0
    clock.now = at("2026-01-04 03:00:40")  # on time again
    assert beat.tick().started == 1


def test_the_cron_is_read_in_the_schedule_timezone(services, schedules, clock) -> None:
    clock.now = at("2026-01-05 00:00:00")
    schedules.enable("acme", "sched/unit/daily", timezone="Europe/Berlin")  # 03:00 CET = 02:00Z
    beat = dispatcher_for(services, clock)
    clock.now = at("2026-01-05 02:00:05")
    assert beat.tick().started == 1
    assert schedules.dispatches("acme")[0]["scheduled_time"] == at("2026-01-05 02:00:00")


def test_due_ticks_walks_back_cheaply_over_a_long_outage() -> None:
    after, now = at("2025-01-01 00:00:00"), at("2026-01-01 00:00:30")
    ticks, newest = due_ticks("* * * * *", None, after, now, "all", 5)
    assert newest == at("2026-01-01 00:00:00")
    assert ticks == [newest - timedelta(minutes=n) for n in (4, 3, 2, 1, 0)]
    assert due_ticks("* * * * *", None, now, now) == ([], None)


def test_enable_validates_its_input(schedules) -> None:
    with pytest.raises(TerminalError, match="bad cron"):
        schedules.enable("acme", "sched/unit/daily", cron="0 3 * *")
    with pytest.raises(TerminalError, match="timezone"):
        schedules.enable("acme", "sched/unit/daily", timezone="Mars/Olympus")
    with pytest.raises(TerminalError, match="no schedule"):
        schedules.enable("acme", "sched/unit/unscheduled")
    with pytest.raises(NotFoundError):
        schedules.enable("nobody", "sched/unit/daily")
    with pytest.raises(NotFoundError):
        schedules.enable("acme", "sched/unit/missing")
    with pytest.raises(TerminalError, match="catch_up"):
        schedules.enable("acme", "sched/unit/daily", catch_up="sometimes")
    with pytest.raises(NotFoundError):
        schedules.disable("acme", "sched/unit/daily")


def test_list_shows_the_effective_cron_and_next_tick(schedules, clock) -> None:
    clock.now = at("2026-01-05 10:00:00")
    schedules.enable("acme", "sched/unit/daily")
    schedules.enable("acme", "sched/unit/half", cron="*/10 * * * *")
    rows = {r["pipeline_path"]: r for r in schedules.list("acme")}
    assert rows["sched/unit/daily"]["effective_cron"] == "0 3 * * *"
    assert rows["sched/unit/daily"]["next_tick"] == at("2026-01-06 03:00:00")
    assert rows["sched/unit/half"]["next_tick"] == at("2026-01-05 10:10:00")
    schedules.disable("acme", "sched/unit/half")
    assert {r["pipeline_path"]: r["enabled"] for r in schedules.list("acme")} == {
        "sched/unit/daily": True,
        "sched/unit/half": False,
    }
