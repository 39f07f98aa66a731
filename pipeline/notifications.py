"""Run-end notifications: decide who hears about a run, build the message, send it.

The run service calls `run_ended` once per run that ends completed or failed. That
only queues work (one Celery task per channel, through the injected
`NotificationQueue`), so a slow or broken receiver can never hold up or change a run.
The task calls `send`, which raises TransientError for its retries.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from credentials.keys import KeyProvider
from credentials.sealed import SealedSecrets
from notify.base import EVENTS, Message, NotificationSettings, Notifier, check_settings
from notify.channels import build_notifier
from notify.store import NotificationSettingsStore
from pipeline.observability.redact import redact, register_secret
from pipeline.settings import Settings
from pipeline.storage.records import StepAttempt
from pipeline.storage.run_store import SqlRunStore
from pipeline_ops_core.errors import NotFoundError

logger = logging.getLogger("pipeline_ops.notify")

NotifierFactory = Callable[[str, NotificationSettings, str | None], Notifier]


class NotificationQueue(Protocol):
    def queue(self, run_id: str, status: str, channel: str) -> None: ...


class NullNotificationQueue:
    """No broker (unit tests, tools that build services only to read): nothing is sent."""

    def queue(self, run_id: str, status: str, channel: str) -> None:
        return None


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def _failing_step(attempts: list[StepAttempt]) -> str | None:
    # The last attempt that did not complete: failed, or still `running` when reaped.
    unfinished = [a for a in attempts if a.status != "completed"]
    if not unfinished:
        return None
    return max(unfinished, key=lambda a: a.started_at).step_id


class NotificationService:
    def __init__(
        self,
        settings: Settings,
        store: SqlRunStore,
        queue: NotificationQueue,
        keys: KeyProvider,
        notifier_factory: NotifierFactory = build_notifier,
    ) -> None:
        self.settings = settings
        self.store = store
        self.queue = queue
        self.notifier_factory = notifier_factory
        # The webhook secret and the Slack URL are sealed in the credential vault.
        secrets = SealedSecrets(store.engine, keys, store.clock)
        self.org_settings = NotificationSettingsStore(store.engine, secrets, store.clock)

    # -- the run-end hook --------------------------------------------------------------------

    def run_ended(self, run_id: str, org_slug: str, status: str) -> None:
        """Queue one send per configured channel. Never raises: the run's result stands."""
        try:
            chosen = self.org_settings.get(org_slug)
            if chosen is None or not chosen.wants(status):
                return
            for channel in chosen.channels():
                self.queue.queue(run_id, status, channel)
        except Exception as exc:
            logger.warning(
                "could not queue notifications: %s",
                redact(f"{type(exc).__name__}: {exc}"),
                extra={"run_id": run_id, "org_slug": org_slug},
            )

    # -- sending (the Celery task calls this) --------------------------------------------------

    def message(self, run_id: str, status: str) -> Message:
        run = self.store.get_run(run_id)
        if run is None:
            raise NotFoundError(f"run {run_id} not found")
        began = run.started_at or run.created_at
        ended = run.ended_at
        duration = int((ended - began).total_seconds() * 1000) if ended and began else None
        failing = _failing_step(self.store.step_attempts(run_id)) if status == "failed" else None
        base = self.settings.public_base_url
        return Message(
            event=EVENTS.get(status, f"run.{status}"),
            run_id=run_id,
            org_slug=run.org_slug,
            pipeline_id=run.pipeline_id,
            pipeline_path=run.pipeline_path,
            status=status,
            start_date=str(run.start_date),
            end_date=str(run.end_date),
            duration_ms=duration,
            failing_step=failing,
            error=redact(run.error_message) if status == "failed" else None,
            # The run's console page: what a person clicking the link in an alert can open.
            status_url=f"{base}/ui/{run.org_slug}/runs/{run_id}",
            trigger=run.trigger,
        )

    def send(self, run_id: str, status: str, channel: str) -> None:
        """Deliver one channel's notification; raises TransientError / TerminalError."""
        message = self.message(run_id, status)
        chosen = self.org_settings.get(message.org_slug)
        if chosen is None:
            raise NotFoundError(f"org {message.org_slug!r} has no notification settings anymore")
        # The channel secrets must never reach a log line or a stored error.
        for secret in (chosen.webhook_secret, chosen.slack_webhook_url, chosen.webhook_url):
            register_secret(secret)
        self.notifier_factory(channel, chosen, self.settings.smtp_url).send(message)

    def record(self, run_id: str, channel: str, error: str | None) -> None:
        """Note the final outcome in the run's log, where operators already look."""
        if error is None:
            self.store.add_line(run_id, "INFO", f"notification sent via {channel}")
        else:
            self.store.add_line(run_id, "WARNING", f"notification via {channel} failed: {error}")

    # -- settings ----------------------------------------------------------------------------

    def get_settings(self, org_slug: str) -> NotificationSettings:
        if self.store.get_org(org_slug) is None:
            raise NotFoundError(f"org {org_slug!r} not found")
        return self.org_settings.get(org_slug) or NotificationSettings(org_slug)

    def set_settings(
        self, wanted: NotificationSettings, rotate_secret: bool = False
    ) -> tuple[NotificationSettings, str | None]:
        """Replace the org's settings; returns them and a webhook secret made just now, if any.

        The webhook secret survives updates (receivers keep verifying) until rotated or
        until the webhook is removed.
        """
        current = self.get_settings(wanted.org_slug)
        check_settings(wanted)
        secret, fresh = None, None
        if wanted.webhook_url:
            secret = None if rotate_secret else current.webhook_secret
            if not secret:
                secret = fresh = new_webhook_secret()
        chosen = replace(wanted, webhook_secret=secret)
        self.org_settings.put(chosen)
        return chosen, fresh
