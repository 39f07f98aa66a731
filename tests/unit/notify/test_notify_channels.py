"""The channels in notify/ against loopback receivers: signed webhook, Slack, SMTP e-mail."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from notify.base import EMAIL, SLACK, WEBHOOK, Message, NotificationSettings
from notify.channels import build_notifier
from notify.email import EmailNotifier, SmtpRelay
from notify.webhook import SlackNotifier, WebhookNotifier, sign
from pipeline_ops_core.errors import TerminalError, TransientError
from tests.support.receivers import SmtpReceiver, WebhookReceiver, verify

SECRET = "whsec_test_secret_0123456789"
MESSAGE = Message(
    event="run.failed",
    run_id="0b7c6f0e-1111-2222-3333-444455556666",
    org_slug="acme",
    pipeline_id="genai_openai_payg",
    pipeline_path="genai/payg/openai",
    status="failed",
    start_date="2026-01-04",
    end_date="2026-01-04",
    duration_ms=12_345,
    failing_step="extract",
    error="HTTP 401 from provider: [REDACTED]",
    status_url="http://api.test/pipelines/status/acme/0b7c6f0e-1111-2222-3333-444455556666",
    trigger="schedule",
)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver()
    yield server
    server.close()


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    server = SmtpReceiver()
    yield server
    server.close()


def test_a_webhook_arrives_signed_and_the_signature_verifies(receiver: WebhookReceiver) -> None:
    WebhookNotifier(receiver.url, SECRET).send(MESSAGE)

    request = receiver.wait_for(1)[0]
    body = json.loads(request.body)
    assert body["run_id"] == MESSAGE.run_id and body["failing_step"] == "extract"
    assert body["status_url"] == MESSAGE.status_url and body["duration_ms"] == 12_345
    assert request.headers["Content-Type"] == "application/json"
    timestamp, signature = request.headers["X-Timestamp"], request.headers["X-Signature"]
    assert signature.startswith("sha256=")
    assert verify(SECRET, timestamp, request.body, signature)
    assert not verify("another-secret", timestamp, request.body, signature)
    assert not verify(SECRET, timestamp, request.body + b" ", signature)
    assert not verify(SECRET, str(int(timestamp) - 3600), request.body, signature)


def test_the_signature_covers_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), b"1700000000.{}", hashlib.sha256).hexdigest()
    assert sign(SECRET, "1700000000", b"{}") == f"sha256={expected}"


@pytest.mark.parametrize(
    ("status", "kind"), [(500, TransientError), (503, TransientError), (429, TransientError)]
)
def test_server_errors_are_transient(receiver: WebhookReceiver, status: int, kind: type) -> None:
    receiver.statuses = [status]
    with pytest.raises(kind):
        WebhookNotifier(receiver.url, SECRET).send(MESSAGE)


def test_client_errors_are_terminal(receiver: WebhookReceiver) -> None:
    receiver.statuses = [404]
    with pytest.raises(TerminalError):
        WebhookNotifier(receiver.url, SECRET).send(MESSAGE)


def test_an_unreachable_webhook_is_transient_and_hides_the_url() -> None:
    from tests.support.servers import free_port

    url = f"http://127.0.0.1:{free_port()}/T000/secret-path"
    with pytest.raises(TransientError) as caught:
        SlackNotifier(url).send(MESSAGE)
    assert "secret-path" not in str(caught.value)


def test_slack_gets_a_text_message(receiver: WebhookReceiver) -> None:
    SlackNotifier(receiver.url).send(MESSAGE)
    text = json.loads(receiver.wait_for(1)[0].body)["text"]
    assert "genai_openai_payg" in text and "FAILED" in text and "extract" in text
    assert MESSAGE.status_url in text


def test_an_email_reaches_the_smtp_server(smtp: SmtpReceiver) -> None:
    relay = SmtpRelay.from_url(smtp.url)
    EmailNotifier(relay, ("ops@acme.test", "oncall@acme.test")).send(MESSAGE)

    sender, recipients, mail = smtp.wait_for(1)[0]
    assert sender == "alerts@pipeline-ops.test"
    assert recipients == ["ops@acme.test", "oncall@acme.test"]
    assert mail["Subject"] == f"[pipeline-ops] acme: genai_openai_payg failed ({MESSAGE.run_id})"
    text = mail.get_payload(decode=True).decode()
    assert "Failing step: extract" in text and MESSAGE.status_url in text


def test_an_unreachable_smtp_server_is_transient() -> None:
    from tests.support.servers import free_port

    relay = SmtpRelay.from_url(f"smtp://127.0.0.1:{free_port()}")
    with pytest.raises(TransientError):
        EmailNotifier(relay, ("ops@acme.test",)).send(MESSAGE)


def test_smtp_urls() -> None:
    relay = SmtpRelay.from_url("smtps://bot%40acme:p%2Fw@mail.acme.test?from=a@acme.test")
    assert (relay.host, relay.port, relay.implicit_tls) == ("mail.acme.test", 465, True)
    assert (relay.username, relay.password, relay.sender) == ("bot@acme", "p/w", "a@acme.test")
    assert SmtpRelay.from_url("smtp://h:2525?starttls=1").starttls is True
    with pytest.raises(TerminalError):
        SmtpRelay.from_url("http://mail.acme.test")


def test_build_notifier_follows_the_settings() -> None:
    settings = NotificationSettings(
        "acme",
        webhook_url="http://h/x",
        webhook_secret=SECRET,
        slack_webhook_url="https://hooks.slack.com/T/B/X",
        email_to=("ops@acme.test",),
    )
    assert isinstance(build_notifier(WEBHOOK, settings), WebhookNotifier)
    assert isinstance(build_notifier(SLACK, settings), SlackNotifier)
    assert isinstance(build_notifier(EMAIL, settings, "smtp://h:25"), EmailNotifier)
    with pytest.raises(TerminalError, match="SMTP"):
        build_notifier(EMAIL, settings, None)
    with pytest.raises(TerminalError, match="not configured"):
        build_notifier(WEBHOOK, NotificationSettings("acme"))
