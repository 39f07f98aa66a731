"""Build and enqueue the Celery canvas of a run from its planned levels.

A chain of levels: one step is a task, parallel steps are a group, and a group
followed by anything becomes a chord (Celery upgrades chain(group, task) itself).
Task ids are derived from the work, so cancel can revoke them without a lookup.
"""

from __future__ import annotations

from typing import Any

from celery import chain, group
from celery.canvas import Signature

from tasks.celery_app import app


def step_task_id(run_id: str, step_id: str) -> str:
    return f"{run_id}:{step_id}"


def finalize_task_id(run_id: str) -> str:
    return f"{run_id}:finalize"


def step_signature(run_id: str, step_id: str, spec: dict[str, Any]) -> Signature:
    from tasks.steps import run_step

    return run_step.si(run_id, step_id).set(
        task_id=step_task_id(run_id, step_id),
        soft_time_limit=spec["timeout_seconds"],
        time_limit=spec["time_limit"],
    )


def build_canvas(run_id: str, plan: dict[str, Any]) -> Signature:
    from tasks.lifecycle import finalize_run, on_run_error

    parts: list[Signature] = []
    for level in plan["levels"]:
        sigs = [step_signature(run_id, s, plan["steps"][s]) for s in level]
        parts.append(sigs[0] if len(sigs) == 1 else group(sigs))
    parts.append(finalize_run.si(run_id).set(task_id=finalize_task_id(run_id)))
    canvas = chain(*parts)
    canvas.link_error(on_run_error.si(run_id))
    return canvas


class CeleryDispatcher:
    def enqueue(self, run_id: str, plan: dict[str, Any]) -> None:
        build_canvas(run_id, plan).apply_async()
        _forget_pending(run_id)

    def revoke(self, run_id: str, plan: dict[str, Any]) -> None:
        ids = [step_task_id(run_id, s) for s in plan["steps"]] + [finalize_task_id(run_id)]
        # Steps already running finish their current attempt; every later step sees the
        # run cancelled and skips, so revocation is an optimisation, not the guarantee.
        app.control.revoke(ids)


def _forget_pending(run_id: str) -> None:
    """Drop this process's interest in the run's Celery results.

    Runs are followed in the metadata DB, not through Celery results, but publishing a
    task subscribes the client to its result channel and the backend keeps the result
    objects alive. Left alone, their cleanup runs at interpreter exit, when redis-py can
    no longer connect, and prints a traceback. Celery has no public call for "forget my
    pending results", so this reads the async backend's registry (absent on other
    backends, where there is nothing to do).
    """
    backend = app.backend
    for mapping in list(getattr(backend, "_pending_results", ()) or ()):
        for task_id in [t for t in list(mapping) if str(t).startswith(f"{run_id}:")]:
            for waiter in list(mapping.get(task_id, {}).values()):
                backend.remove_pending_result(waiter)
