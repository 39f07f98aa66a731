"""Run-end notifications through the real Celery worker: a signed webhook to a local
HTTP server (retried on 500 without touching the run), and e-mail to a local SMTP
server (aiosmtpd). Also checks that the worker logs JSON with run and step ids."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import date

import pytest

from notify.base import NotificationSettings
from pipeline.runs.service import RunRequest
from tests.integration.conftest import Stack, make_stack, write_pipeline
from tests.support.receivers import SmtpReceiver, WebhookReceiver, verify
from tests.support.servers import Server

OK_PIPELINE = """\
pipeline_id: test_notify_ok
name: One quick step
provider: notify
domain: test
steps:
  - step_id: quick
    ps_type: generic.noop
"""
FAILING_PIPELINE = """\
pipeline_id: test_notify_fail
name: A step that fails at once
provider: notify
domain: test
steps:
  - step_id: boom
    ps_type: generic.file_extract
    # Valid when the file is loaded (a bad sleep_seconds no longer is); fails at run time.
    config: {path: notify_no_such_file.csv, destination_table: boom_rows}
"""
ORG = "notif"


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpReceiver]:
    server = SmtpReceiver()
    yield server
    server.close()


@pytest.fixture(scope="module")
def mail_stack(
    tmp_path_factory: pytest.TempPathFactory,
    redis_server: Server,
    test_configs_dir: object,
    smtp: SmtpReceiver,
) -> Iterator[Stack]:
    # The worker inherits this process's environment: that is how it learns the relay.
    previous = os.environ.get("PIPELINE_OPS_SMTP_URL")
    os.environ["PIPELINE_OPS_SMTP_URL"] = smtp.url
    try:
        tmp = tmp_path_factory.mktemp("stack-notify")
        built, stop = make_stack("sqlite", tmp, redis_server, None, test_configs_dir)  # type: ignore[arg-type]
    finally:
        if previous is None:
            os.environ.pop("PIPELINE_OPS_SMTP_URL", None)
        else:
            os.environ["PIPELINE_OPS_SMTP_URL"] = previous
    write_pipeline(built, "notify/test/ok", OK_PIPELINE)
    write_pipeline(built, "notify/test/failing", FAILING_PIPELINE)
    built.services.orgs.create(ORG)
    yield built
    stop()


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver()
    yield server
    server.close()


def configure(stack: Stack, webhook: WebhookReceiver) -> str:
    notifications = stack.services.notifications
    assert notifications is not None
    wanted = NotificationSettings(
        ORG,
        on_failure=True,
        on_success=True,
        webhook_url=webhook.url,
        email_to=("ops@notif.test",),
    )
    _, fresh = notifications.set_settings(wanted, rotate_secret=True)
    assert fresh is not None
    return fresh


def start(stack: Stack, pipeline: str, day: str) -> str:
    when = date.fromisoformat(day)
    request = RunRequest(ORG, "notify", "test", pipeline, when, when)
    return str(stack.services.runs.start(request).run_id)


def lines_of(stack: Stack, run_id: str) -> list[str]:
    return [line.message for line in stack.services.store.lines(run_id)]


def test_a_webhook_answering_500_is_retried_and_the_run_stays_completed(
    mail_stack: Stack, webhook: WebhookReceiver, smtp: SmtpReceiver
) -> None:
    secret = configure(mail_stack, webhook)
    webhook.statuses = [500, 500]  # then 200
    mails_before = len(smtp.messages)

    run_id = start(mail_stack, "ok", "2026-02-01")
    run = mail_stack.wait(run_id)

    received = webhook.wait_for(3)
    assert [r.status for r in received] == [500, 500, 200]
    for request in received:
        assert verify(
            secret, request.headers["X-Timestamp"], request.body, request.headers["X-Signature"]
        )
        body = json.loads(request.body)
        assert body["run_id"] == run_id and body["event"] == "run.succeeded"
        assert body["status_url"].endswith(f"/ui/{ORG}/runs/{run_id}")
    assert run.status == "completed"
    assert mail_stack.services.store.get_run(run_id).status == "completed"
    _, recipients, mail = smtp.wait_for(mails_before + 1)[-1]
    assert recipients == ["ops@notif.test"] and "completed" in mail["Subject"]
    mail_stack_lines = _wait_for_line(mail_stack, run_id, "notification sent via webhook")
    assert "notification sent via email" in mail_stack_lines


def test_a_failed_run_is_reported_with_its_step_and_error(
    mail_stack: Stack, webhook: WebhookReceiver, smtp: SmtpReceiver
) -> None:
    secret = configure(mail_stack, webhook)
    mails_before = len(smtp.messages)

    run_id = start(mail_stack, "failing", "2026-02-02")
    run = mail_stack.wait(run_id)

    assert run.status == "failed"
    request = webhook.wait_for(1)[0]
    assert verify(
        secret, request.headers["X-Timestamp"], request.body, request.headers["X-Signature"]
    )
    body = json.loads(request.body)
    assert (body["event"], body["status"], body["failing_step"]) == ("run.failed", "failed", "boom")
    assert "file not found: notify_no_such_file.csv" in body["error"]
    _, _, mail = smtp.wait_for(mails_before + 1)[-1]
    text = mail.get_content()
    assert "Failing step: boom" in text and run_id in text

    # The worker's own log is JSON with the run and step ids bound.
    records = [_json(line) for line in mail_stack.worker.log().splitlines()]
    mine = [r for r in records if r and r.get("run_id") == run_id and r.get("step_id") == "boom"]
    assert mine, mail_stack.worker.log()[-2000:]


def test_a_webhook_refusing_for_good_is_noted_and_changes_nothing(
    mail_stack: Stack, webhook: WebhookReceiver
) -> None:
    configure(mail_stack, webhook)
    webhook.statuses = [410]  # terminal: not retried

    run_id = start(mail_stack, "ok", "2026-02-03")

    assert mail_stack.wait(run_id).status == "completed"
    logged = _wait_for_line(
        mail_stack, run_id, "notification via webhook failed: TerminalError: webhook: HTTP 410"
    )
    assert len(webhook.received) == 1
    assert logged


def _json(line: str) -> dict[str, object] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _wait_for_line(stack: Stack, run_id: str, text: str, timeout: float = 30) -> list[str]:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = lines_of(stack, run_id)
        if any(text in line for line in found):
            return found
        time.sleep(0.1)
    raise AssertionError(f"no {text!r} in the run log: {lines_of(stack, run_id)}")
