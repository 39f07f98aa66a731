"""The notification and schedule-dispatch tasks, executed in-process (Task.apply)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from notify.base import Message, NotificationSettings
from pipeline.bootstrap import Services, build_services
from pipeline.runs.service import RunRequest
from pipeline.schedules.service import ScheduleService
from pipeline.settings import Settings
from pipeline.storage.db import upgrade
from pipeline_ops_core.errors import TerminalError, TransientError
from tasks.beat import dispatch_schedules
from tasks.notifications import send_notification
from tasks.runtime import use_services
from tests.support.doubles import ManualClock as Clock
from tests.support.doubles import RecordingDispatcher

PIPELINE = """\
pipeline_id: tasks_daily
name: Daily
provider: tasks
domain: unit
schedule: "0 3 * * *"
steps:
  - step_id: only
    ps_type: generic.noop
"""


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 1, 5, 2, 0, tzinfo=UTC))


@pytest.fixture
def svc(tmp_path: Path, clock: Clock) -> Iterator[Services]:
    (tmp_path / "configs" / "tasks" / "unit").mkdir(parents=True)
    (tmp_path / "configs" / "tasks" / "unit" / "daily.yml").write_text(PIPELINE)
    settings = Settings(
        var_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'meta.db'}",
        redis_url="redis://127.0.0.1:1/0",
        warehouse_url=f"duckdb:///{tmp_path / 'w.duckdb'}",
        configs_dir=tmp_path / "configs",
    )
    upgrade(settings.database_url)
    built = build_services(settings, RecordingDispatcher(), clock=clock, db_time=clock)
    built.orgs.create("acme")
    use_services(built)
    yield built
    use_services(None)


def failed_run(svc: Services) -> str:
    day = datetime(2026, 1, 4).date()
    run_id = str(svc.runs.start(RunRequest("acme", "tasks", "unit", "daily", day, day)).run_id)
    svc.runs.fail(run_id, "boom")
    return run_id


def raising(error: Exception):  # type: ignore[no-untyped-def]
    class Broken:
        channel = "webhook"

        def send(self, message: Message) -> None:
            raise error

    return lambda channel, settings, smtp: Broken()


@pytest.mark.parametrize(
    ("error", "noted"),
    [
        (TransientError("webhook: HTTP 500"), "webhook: HTTP 500 (gave up after 1 attempts)"),
        (TerminalError("webhook: HTTP 404"), "TerminalError: webhook: HTTP 404"),
    ],
)
def test_a_failing_notifier_is_noted_and_the_task_does_not_raise(
    svc: Services, error: Exception, noted: str
) -> None:
    assert svc.notifications is not None
    svc.notifications.set_settings(NotificationSettings("acme", webhook_url="https://h.test/x"))
    svc.notifications.notifier_factory = raising(error)
    run_id = failed_run(svc)

    result = send_notification.apply(args=(run_id, "failed", "webhook"))

    assert result.successful() and result.result["sent"] is False
    assert svc.store.lines(run_id)[-1].message == f"notification via webhook failed: {noted}"
    assert svc.store.get_run(run_id).status == "failed"


def test_the_beat_task_dispatches_due_ticks(svc: Services, clock: Clock) -> None:
    ScheduleService(svc.store, svc.catalog).enable("acme", "tasks/unit/daily")
    clock.now = datetime(2026, 1, 5, 3, 0, 30, tzinfo=UTC)

    result = dispatch_schedules.apply()

    assert result.result["started"] == 1
    assert len(svc.runs.dispatcher.enqueued) == 1  # type: ignore[attr-defined]
