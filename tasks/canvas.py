"""Build and enqueue the Celery canvas of a run from its planned levels.

A chain of levels: one step is a task, parallel steps are a group, and a group
followed by anything becomes a chord (Celery upgrades chain(group, task) itself).
Task ids are derived from the work, so cancel can revoke them without a lookup.
"""

from __future__ import annotations

from typing import Any

import redis
from celery import chain, group
from celery.canvas import Signature

from pipeline.redact import display_url
from pipeline_ops_core.errors import ServiceUnavailableError
from tasks.celery_app import app


def broker_unreachable(url: str) -> str:
    return (
        f"cannot reach Redis at {display_url(url)} (is redis-server running? "
        "for a one-off run use --local)"
    )


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
    # A broker that does not answer this fast is down for the caller's purposes: the
    # request is refused at once rather than after Celery's reconnect retries.
    CHECK_TIMEOUT = 2.0

    def __init__(self, eager: bool = False) -> None:
        # Eager (--local, PIPELINE_OPS_EAGER): tasks run in this process, no broker involved.
        self.eager = eager
        self._client: redis.Redis | None = None

    def check(self) -> None:
        """Raise ServiceUnavailableError, naming the broker, if it can't take a run now."""
        url = str(app.conf.broker_url or "")
        if (
            self.eager
            or app.conf.task_always_eager
            or not url.startswith(("redis://", "rediss://"))
        ):
            return  # in-process: there is no broker to reach
        if self._client is None:
            self._client = redis.Redis.from_url(
                url, socket_connect_timeout=self.CHECK_TIMEOUT, socket_timeout=self.CHECK_TIMEOUT
            )
        try:
            self._client.ping()
        except redis.RedisError:
            raise ServiceUnavailableError(broker_unreachable(url)) from None

    def enqueue(self, run_id: str, plan: dict[str, Any]) -> None:
        try:
            build_canvas(run_id, plan).apply_async()
        except Exception:
            # Celery's own error for a lost broker ("Retry limit exceeded … must be
            # restarted") names neither the broker nor the fix; say both when that is it.
            self.check()
            raise
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
