"""Run-end notifications (pipeline/notifications.py): who is told, what, and that a broken
notifier never changes a run's result."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from notify.base import Message, NotificationSettings
from pipeline.bootstrap import Services, build_services
from pipeline.notifications import NotificationService
from pipeline.runs.service import RunRequest
from pipeline.storage import state
from pipeline.storage.db import upgrade
from pipeline_ops_core.errors import TerminalError


class RecordingQueue:
    def __init__(self, fail: bool = False) -> None:
        self.queued: list[tuple[str, str, str]] = []
        self.fail = fail

    def queue(self, run_id: str, status: str, channel: str) -> None:
        if self.fail:
            raise ConnectionError("broker down")
        self.queued.append((run_id, status, channel))


@pytest.fixture
def queue() -> RecordingQueue:
    return RecordingQueue()


@pytest.fixture
def svc(settings, dispatcher, clock, queue) -> Services:
    upgrade(settings.database_url)
    built = build_services(settings, dispatcher, clock=clock, db_time=clock, notifications=queue)
    built.orgs.create("acme")
    return built


def notifications(svc: Services) -> NotificationService:
    assert svc.notifications is not None
    return svc.notifications


def start(svc: Services) -> str:
    request = RunRequest("acme", "test", "unit", "fan_in", date(2026, 1, 1), date(2026, 1, 1))
    run_id = str(svc.runs.start(request).run_id)
    svc.store.transition(run_id, state.RUNNING)
    return run_id


def configure(svc: Services, **changes: Any) -> str | None:
    wanted = NotificationSettings(
        "acme", webhook_url="https://hooks.test/x", email_to=("ops@acme.test",), **changes
    )
    return notifications(svc).set_settings(wanted)[1]


def test_a_failed_run_queues_one_send_per_channel(svc, queue, clock) -> None:
    configure(svc)
    run_id = start(svc)
    assert svc.runs.fail(run_id, "step a failed: boom")
    assert queue.queued == [(run_id, "failed", "webhook"), (run_id, "failed", "email")]
    # A second terminal move loses its race and queues nothing more.
    assert not svc.runs.fail(run_id, "again")
    assert len(queue.queued) == 2


def test_success_is_only_sent_when_asked_for(svc, queue) -> None:
    configure(svc)
    assert svc.runs.complete(start(svc))
    assert queue.queued == []
    configure(svc, on_success=True, on_failure=False)
    run_id = start(svc)
    svc.runs.complete(run_id)
    failed = start(svc)
    svc.runs.fail(failed, "x")
    assert queue.queued == [(run_id, "completed", "webhook"), (run_id, "completed", "email")]


def test_a_broken_queue_does_not_change_the_run(settings, dispatcher, clock) -> None:
    upgrade(settings.database_url)
    built = build_services(
        settings, dispatcher, clock=clock, db_time=clock, notifications=RecordingQueue(True)
    )
    built.orgs.create("acme")
    configure(built)
    run_id = start(built)
    assert built.runs.fail(run_id, "step a failed: boom") is True
    assert built.store.get_run(run_id).status == state.FAILED


def test_the_message_names_the_failing_step_and_redacts_the_error(svc, clock) -> None:
    run_id = start(svc)
    started = svc.store.begin_attempt(
        run_id,
        "a",
        1,
        exists=False,
        task_id="t",
        worker="w",
        alive_for=0,
        message="started",
    )
    clock.advance(90)
    svc.executor.failed(run_id, "a", 1, "HTTP 401 with Authorization: Bearer sk-secretsecret123")
    assert started is not None

    message = notifications(svc).message(run_id, "failed")

    assert message.event == "run.failed" and message.status == "failed"
    assert message.failing_step == "a"
    assert message.duration_ms == 90_000
    assert "sk-secretsecret123" not in (message.error or "")
    assert "[REDACTED]" in (message.error or "")
    assert message.status_url == f"http://127.0.0.1:8001/ui/acme/runs/{run_id}"
    assert message.pipeline_id == "test_fan_in" and message.start_date == "2026-01-01"


def test_the_webhook_secret_is_made_once_kept_and_rotated(svc) -> None:
    fresh = configure(svc)
    assert fresh and fresh.startswith("whsec_")
    assert configure(svc) is None  # kept across updates: receivers keep verifying
    assert notifications(svc).get_settings("acme").webhook_secret == fresh
    rotated = notifications(svc).set_settings(
        NotificationSettings("acme", webhook_url="https://hooks.test/x"), rotate_secret=True
    )[1]
    assert rotated and rotated != fresh
    cleared, _ = notifications(svc).set_settings(NotificationSettings("acme"))
    assert cleared.webhook_secret is None and cleared.channels() == []


def test_settings_are_validated(svc) -> None:
    service = notifications(svc)
    with pytest.raises(TerminalError, match="http"):
        service.set_settings(NotificationSettings("acme", webhook_url="ftp://x"))
    with pytest.raises(TerminalError, match="e-mail"):
        service.set_settings(NotificationSettings("acme", email_to=("not-an-address",)))
    with pytest.raises(Exception, match="not found"):
        service.get_settings("nobody")
    assert service.get_settings("acme") == NotificationSettings("acme")


def test_send_builds_the_channel_notifier(svc, clock) -> None:
    sent: list[tuple[str, Message, str | None]] = []

    class Fake:
        channel = "webhook"

        def send(self, message: Message) -> None:
            sent.append((self.channel, message, None))

    service = notifications(svc)
    service.notifier_factory = lambda channel, chosen, smtp: Fake()
    configure(svc)
    run_id = start(svc)
    svc.runs.complete(run_id)
    service.send(run_id, "completed", "webhook")
    service.record(run_id, "webhook", None)
    assert sent[0][1].event == "run.succeeded" and sent[0][1].failing_step is None
    assert svc.store.lines(run_id)[-1].message == "notification sent via webhook"


def test_a_run_failing_validation_is_reported_too(svc, queue, monkeypatch) -> None:
    from pipeline_ops_core.errors import RunValidationError, TemplateError

    def broken_plan(*args: object, **kwargs: object) -> None:
        raise TemplateError("config.x: unknown template variable '${nope}'")

    monkeypatch.setattr("pipeline.runs.service.build_plan", broken_plan)
    configure(svc)
    request = RunRequest("acme", "test", "unit", "fan_in", date(2026, 1, 1), date(2026, 1, 1))
    with pytest.raises(RunValidationError) as caught:
        svc.runs.start(request)
    assert queue.queued[0] == (caught.value.run_id, "failed", "webhook")
