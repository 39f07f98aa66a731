"""Run-level tasks: the finalizer, the error callback and the reaper (beat)."""

from __future__ import annotations

from typing import Any

from pipeline.queue import FINALIZE_RUN, ON_RUN_ERROR, REAP
from tasks.celery_app import app
from tasks.runtime import services


@app.task(name=FINALIZE_RUN, acks_late=True, reject_on_worker_lost=True)
def finalize_run(run_id: str) -> dict[str, Any]:
    completed = services().executor.finalize(run_id)
    return {"run_id": run_id, "completed": completed}


@app.task(name=ON_RUN_ERROR, acks_late=True)
def on_run_error(run_id: str) -> dict[str, Any]:
    """Second line of failure handling: the step task normally records its own failure.

    This catches what it could not, such as a child killed by the hard time limit.
    """
    failed = services().runs.fail(
        run_id, "a step task failed without recording why (hard time limit or lost worker)"
    )
    return {"run_id": run_id, "failed": failed}


@app.task(name=REAP)
def reap() -> dict[str, Any]:
    reaped = services().runs.reap()
    return {"reaped": reaped}
