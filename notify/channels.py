"""Build the notifier for one of an org's channels."""

from __future__ import annotations

from notify.base import EMAIL, SLACK, WEBHOOK, NotificationSettings, Notifier
from notify.email import EmailNotifier, SmtpRelay
from notify.webhook import SlackNotifier, WebhookNotifier
from pipeline_ops_core.errors import TerminalError


def build_notifier(
    channel: str, settings: NotificationSettings, smtp_url: str | None = None
) -> Notifier:
    """TerminalError when the channel is no longer configured (settings changed since)."""
    if channel == WEBHOOK and settings.webhook_url:
        return WebhookNotifier(settings.webhook_url, settings.webhook_secret or "")
    if channel == SLACK and settings.slack_webhook_url:
        return SlackNotifier(settings.slack_webhook_url)
    if channel == EMAIL and settings.email_to:
        if not smtp_url:
            raise TerminalError("e-mail notifications need PIPELINE_OPS_SMTP_URL to be set")
        return EmailNotifier(SmtpRelay.from_url(smtp_url), settings.email_to)
    raise TerminalError(f"channel {channel!r} is not configured for org {settings.org_slug!r}")
