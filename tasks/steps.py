"""The step task: one pipeline step, retried with backoff, bounded by time limits.

Task arguments are only ids; the plan lives in the run row. The work itself is
`pipeline.execution.StepExecutor.run`; this module maps its outcomes onto Celery.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from celery.exceptions import Ignore, SoftTimeLimitExceeded

from celeryconfig import MAX_RETRY_COUNTDOWN
from pipeline.execution import DependencyPending, DuplicateDelivery, LostWorkersError
from pipeline.redact import cap_text, redact, secret_scope
from pipeline_ops_core.errors import RunCancelledError, TransientError
from tasks.celery_app import app
from tasks.runtime import services

logger = logging.getLogger("pipeline_ops.tasks")


class StepFailed(Exception):
    """The step failed for good; its run is already marked failed."""


def backoff_countdown(backoff_seconds: float, attempt: int, retry_after: float | None) -> float:
    """Exponential backoff from `backoff_seconds`, with up to 10% jitter, honouring Retry-After."""
    base = min(float(MAX_RETRY_COUNTDOWN), backoff_seconds * 2 ** (attempt - 1))
    countdown = base * (1 + random.uniform(0, 0.1))
    if retry_after is not None:
        countdown = max(countdown, min(float(MAX_RETRY_COUNTDOWN), retry_after))
    return countdown


def describe(exc: BaseException, limit: int = 4096) -> str:
    """The exception's text as it may be logged, stored or put in a Celery result:
    redacted and capped (a provider's 5 MiB answer must not travel on)."""
    text = str(exc) or type(exc).__name__
    return cap_text(redact(text) or text, limit) or text


@app.task(
    bind=True,
    name="pipeline_ops.run_step",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
)
def run_step(self: Any, run_id: str, step_id: str) -> dict[str, Any]:
    # Secrets the step decrypts are masked in what it logs and stores, and forgotten when
    # it ends: they never touch another run's text.
    with secret_scope():
        return _run_step(self, run_id, step_id)


def _run_step(self: Any, run_id: str, step_id: str) -> dict[str, Any]:
    svc = services()
    executor = svc.executor
    limit = svc.settings.max_stored_text
    attempt = int(self.request.retries) + 1
    spec: dict[str, Any] = {}
    try:
        run, spec = executor.load(run_id, step_id)
        outcome = executor.run(run, step_id, attempt, task_id=self.request.id)
    except (DuplicateDelivery, DependencyPending) as exc:
        # A twin of this message is (or will be) doing the work; this copy stands down
        # without continuing the chain, so the work happens once.
        logger.info("ignoring %s/%s attempt %s: %s", run_id, step_id, attempt, exc)
        raise Ignore() from exc
    except RunCancelledError as exc:
        # The run is being cancelled: record that the step stopped (which may end the run
        # `cancelled`) and end the chain here, without an error callback.
        executor.cancelled(run_id, step_id, attempt, describe(exc, limit))
        raise Ignore() from exc
    except LostWorkersError as exc:
        message = describe(exc, limit)
        executor.failed(run_id, step_id, attempt, message)
        raise StepFailed(message) from None
    except SoftTimeLimitExceeded:
        message = (
            f"step {step_id} exceeded timeout_seconds={spec.get('timeout_seconds')} "
            "and was stopped by the soft time limit"
        )
        executor.failed(run_id, step_id, attempt, message)
        raise StepFailed(message) from None
    except TransientError as exc:
        max_attempts = int(spec.get("max_attempts", 1))
        if attempt < max_attempts:
            countdown = backoff_countdown(
                float(spec.get("backoff_seconds", 0)), attempt, exc.retry_after
            )
            executor.retrying(run_id, step_id, attempt, describe(exc, limit), countdown)
            # Celery re-sends the message with an ETA: the worker does not sleep.
            raise self.retry(countdown=countdown, exc=StepFailed(describe(exc, limit))) from None
        message = f"{describe(exc, limit)} (gave up after {attempt} attempts)"
        executor.failed(run_id, step_id, attempt, message)
        raise StepFailed(message) from None
    except Exception as exc:
        message = describe(exc, limit)
        if type(exc).__name__ not in message:
            message = f"{type(exc).__name__}: {message}"
        executor.failed(run_id, step_id, attempt, message)
        raise StepFailed(message) from None
    return {
        "run_id": run_id,
        "step_id": step_id,
        "status": outcome.status,
        "rows_written": outcome.rows_written,
    }
