"""How the admin API (and the CLI) show notification settings: secrets never, a fresh
webhook secret once."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit


def masked_url(url: str | None) -> str | None:
    """Where a secret-bearing URL points (a Slack webhook URL is its own credential)."""
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}/…"


def present_notifications(settings: Any, fresh_secret: str | None = None) -> dict[str, Any]:
    """NotificationSettings as the API shows them: the webhook secret only when fresh."""
    shown = {
        "org_slug": settings.org_slug,
        "on_failure": settings.on_failure,
        "on_success": settings.on_success,
        "webhook_url": settings.webhook_url,
        "webhook_secret_set": bool(settings.webhook_secret),
        "slack_webhook_url": masked_url(settings.slack_webhook_url),
        "email_to": list(settings.email_to),
        "channels": settings.channels(),
    }
    if fresh_secret:
        shown["webhook_secret"] = fresh_secret
    return shown
