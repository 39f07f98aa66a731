"""The step task: one pipeline step, retried with backoff, bounded by time limits.

Task arguments are only ids; the plan lives in the run row. The work itself is
`pipeline.runs.execution.StepExecutor.run`; this module maps its outcomes onto Celery.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.exceptions import Ignore, SoftTimeLimitExceeded

from pipeline.observability.redact import secret_scope
from pipeline.queue import RUN_STEP
from pipeline.runs.execution import DependencyPending, DuplicateDelivery, LostWorkersError
from pipeline.storage.records import PlannedStep
from pipeline_ops_core.errors import RunCancelledError, TransientError
from tasks.celery_app import app
from tasks.retries import backoff_countdown, describe
from tasks.runtime import services

logger = logging.getLogger("pipeline_ops.tasks")


class StepFailed(Exception):
    """The step failed for good; its run is already marked failed."""


@app.task(
    bind=True,
    name=RUN_STEP,
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
    # None until the run is loaded: a load that fails is not retried.
    spec: PlannedStep | None = None
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
            f"step {step_id} exceeded timeout_seconds={spec and spec.timeout_seconds} "
            "and was stopped by the soft time limit"
        )
        executor.failed(run_id, step_id, attempt, message)
        raise StepFailed(message) from None
    except TransientError as exc:
        if spec is not None and attempt < spec.max_attempts:
            countdown = backoff_countdown(float(spec.backoff_seconds), attempt, exc.retry_after)
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
