"""The notification task: one channel of one run's notification, retried with backoff.

Queued by the run's end (pipeline.notifications.NotificationService.run_ended, through
pipeline.queue.CeleryNotificationQueue). Whatever happens here, the run's result is already final:
a failure is logged and noted in the run log, never raised into the run.
"""

from __future__ import annotations

import logging
from typing import Any

from pipeline.observability.redact import secret_scope
from pipeline.queue import SEND_NOTIFICATION
from pipeline_ops_core.errors import TransientError
from tasks.celery_app import app
from tasks.retries import backoff_countdown, describe
from tasks.runtime import services

logger = logging.getLogger("pipeline_ops.notify")

# 1, 2, 4, ... seconds (with jitter): ten tries span about 17 minutes.
BACKOFF_SECONDS = 1.0
MAX_RETRIES = 10


@app.task(
    bind=True,
    name=SEND_NOTIFICATION,
    acks_late=True,
    ignore_result=True,
    max_retries=MAX_RETRIES,
)
def send_notification(self: Any, run_id: str, status: str, channel: str) -> dict[str, Any]:
    # The channel's secrets are masked while this task runs, and forgotten after.
    with secret_scope():
        return _send(self, run_id, status, channel)


def _send(self: Any, run_id: str, status: str, channel: str) -> dict[str, Any]:
    notifications = services().notifications
    attempt = int(self.request.retries) + 1
    bound = {"run_id": run_id, "task_id": self.request.id}
    try:
        notifications.send(run_id, status, channel)
    except TransientError as exc:
        # Eager mode (`run --local`) would retry inline with no pause, holding up the run.
        if attempt <= MAX_RETRIES and not self.request.is_eager:
            countdown = backoff_countdown(BACKOFF_SECONDS, attempt, exc.retry_after)
            logger.warning(
                "notification via %s failed (attempt %d), retrying in %.1fs: %s",
                channel,
                attempt,
                countdown,
                describe(exc),
                extra=bound,
            )
            raise self.retry(countdown=countdown, exc=exc) from None
        return _gave_up(run_id, channel, f"{describe(exc)} (gave up after {attempt} attempts)")
    except Exception as exc:  # TerminalError or a bug: another try would fail the same way
        return _gave_up(run_id, channel, f"{type(exc).__name__}: {describe(exc)}")
    _note(run_id, channel, None)
    logger.info("notification sent via %s", channel, extra=bound)
    return {"run_id": run_id, "channel": channel, "sent": True}


def _gave_up(run_id: str, channel: str, error: str) -> dict[str, Any]:
    logger.error("notification via %s failed: %s", channel, error, extra={"run_id": run_id})
    _note(run_id, channel, error)
    return {"run_id": run_id, "channel": channel, "sent": False}


def _note(run_id: str, channel: str, error: str | None) -> None:
    try:
        services().notifications.record(run_id, channel, error)
    except Exception:  # the run log is a courtesy; the process log has it already
        logger.warning("could not note the notification in the run log", exc_info=True)
