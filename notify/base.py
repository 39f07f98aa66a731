"""What a notification says, who gets it, and the contract every channel implements.

notify/ is a leaf: it imports only pipeline_ops_core/errors.py and third-party libraries. The engine
(pipeline/) builds the `Message` from its records and hands it to a `Notifier`.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from pipeline_ops_core.errors import TerminalError

WEBHOOK, SLACK, EMAIL = "webhook", "slack", "email"
CHANNELS = (WEBHOOK, SLACK, EMAIL)

# Run status -> the event a notification reports.
EVENTS = {"failed": "run.failed", "completed": "run.succeeded"}

_EMAIL_RE = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+\Z")


@dataclass(frozen=True)
class Message:
    event: str  # run.failed | run.succeeded
    run_id: str
    org_slug: str
    pipeline_id: str
    pipeline_path: str
    status: str
    start_date: str
    end_date: str
    duration_ms: int | None
    failing_step: str | None
    error: str | None  # already redacted by the engine
    status_url: str
    trigger: str = "api"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def subject(self) -> str:
        return f"[pipeline-ops] {self.org_slug}: {self.pipeline_id} {self.status} ({self.run_id})"

    def text(self) -> str:
        """The human-readable body used by Slack and e-mail."""
        seconds = "?" if self.duration_ms is None else f"{self.duration_ms / 1000:.1f}s"
        lines = [
            f"Pipeline {self.pipeline_id} ({self.pipeline_path}) for {self.org_slug}: "
            f"{self.status.upper()} after {seconds}",
            f"Run: {self.run_id} (trigger {self.trigger}, "
            f"dates {self.start_date}..{self.end_date})",
        ]
        if self.failing_step:
            lines.append(f"Failing step: {self.failing_step}")
        if self.error:
            lines.append(f"Error: {self.error}")
        lines.append(f"Status: {self.status_url}")
        return "\n".join(lines)


class Notifier(Protocol):
    channel: str

    def send(self, message: Message) -> None:
        """Deliver or raise: TransientError (worth a retry) or TerminalError (it won't help)."""


@dataclass(frozen=True)
class NotificationSettings:
    """One org's choice of events and channels. on_failure is on unless turned off."""

    org_slug: str
    on_failure: bool = True
    on_success: bool = False
    webhook_url: str | None = None
    webhook_secret: str | None = None
    slack_webhook_url: str | None = None
    email_to: tuple[str, ...] = field(default_factory=tuple)

    def channels(self) -> list[str]:
        configured = {
            WEBHOOK: self.webhook_url,
            SLACK: self.slack_webhook_url,
            EMAIL: self.email_to,
        }
        return [name for name in CHANNELS if configured[name]]

    def wants(self, run_status: str) -> bool:
        if run_status == "failed":
            return self.on_failure
        if run_status == "completed":
            return self.on_success
        return False


def check_settings(settings: NotificationSettings) -> None:
    """Refuse settings that could never deliver (bad addresses), and URLs the egress policy
    refuses (pipeline_ops_core/egress.py): the same decision is made again when a notification is
    sent."""
    from notify.http import check_url

    if settings.webhook_url is not None:
        check_url(settings.webhook_url, WEBHOOK)
    if settings.slack_webhook_url is not None:
        check_url(settings.slack_webhook_url, SLACK)
    for address in settings.email_to:
        if not _EMAIL_RE.match(address):
            raise TerminalError(f"not an e-mail address: {address!r}")
