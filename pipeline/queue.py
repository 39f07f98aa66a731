"""The Celery side every process shares: the app, and the two adapters the services
enqueue through (the run service's `Dispatcher`, the notification service's queue).

Both send tasks by name, so nothing here (or in the API, or the CLI) imports the task
code: the tasks are registered only where they run, in the workers (tasks/, loaded by
`celery -A tasks.celery_app`). The task names are defined here, once, and the task
modules register their functions under them.

A run's canvas is a chain of its planned levels: one step is a task, parallel steps are a
group, and a group followed by anything becomes a chord (Celery upgrades chain(group,
task) itself). Task ids are derived from the work, so cancel can revoke them without a
lookup.
"""

from __future__ import annotations

from typing import Any

import redis
from celery import Celery, chain, group
from celery.canvas import Signature

from pipeline.observability.redact import display_url
from pipeline.storage.records import PlannedStep, RunPlan
from pipeline_ops_core.errors import ServiceUnavailableError

# The app is configured from celeryconfig.py when its configuration is first read, so a
# process that never enqueues never reads it; `celery -A tasks.celery_app` runs this app.
celery_app = Celery("pipeline_ops")
celery_app.config_from_object("celeryconfig")

RUN_STEP = "pipeline_ops.run_step"
FINALIZE_RUN = "pipeline_ops.finalize_run"
ON_RUN_ERROR = "pipeline_ops.on_run_error"
REAP = "pipeline_ops.reap"
DISPATCH_SCHEDULES = "pipeline_ops.dispatch_schedules"
SEND_NOTIFICATION = "pipeline_ops.send_notification"
PRUNE = "pipeline_ops.prune"

# Steps go to Celery's default queue; schedule dispatch, the reaper, notifications and
# pruning go to their own, so a schedule tick never waits behind hours of steps. A worker
# must consume both (`-Q celery,pipeline_ops.control`, as the Procfile's does), or a small
# dedicated worker takes the control queue.
STEP_QUEUE = "celery"
CONTROL_QUEUE = "pipeline_ops.control"
CONTROL_TASKS = (REAP, DISPATCH_SCHEDULES, SEND_NOTIFICATION, PRUNE)


def broker_unreachable(url: str) -> str:
    return (
        f"cannot reach Redis at {display_url(url)} (is redis-server running? "
        "for a one-off run use --local)"
    )


def step_task_id(run_id: str, step_id: str) -> str:
    return f"{run_id}:{step_id}"


def finalize_task_id(run_id: str) -> str:
    return f"{run_id}:finalize"


def _task(name: str, *args: Any) -> Signature:
    return celery_app.signature(name, args=args, immutable=True)


def step_signature(run_id: str, step_id: str, spec: PlannedStep) -> Signature:
    return _task(RUN_STEP, run_id, step_id).set(
        task_id=step_task_id(run_id, step_id),
        soft_time_limit=spec.timeout_seconds,
        time_limit=spec.time_limit,
    )


def build_canvas(run_id: str, plan: RunPlan) -> Signature:
    parts: list[Signature] = []
    for level in plan.levels:
        sigs = [step_signature(run_id, s, plan.steps[s]) for s in level]
        parts.append(sigs[0] if len(sigs) == 1 else group(sigs))
    parts.append(_task(FINALIZE_RUN, run_id).set(task_id=finalize_task_id(run_id)))
    canvas = chain(*parts)
    canvas.link_error(_task(ON_RUN_ERROR, run_id))
    return canvas


def _in_process(eager: bool) -> bool:
    """Tasks run in this process (--local, PIPELINE_OPS_EAGER): no broker is involved, and
    the task modules (celeryconfig.include) must be loaded here to run them."""
    if not (eager or celery_app.conf.task_always_eager):
        return False
    if RUN_STEP not in celery_app.tasks:
        celery_app.loader.import_default_modules()
    return True


class CeleryDispatcher:
    # A broker that does not answer this fast is down for the caller's purposes: the
    # request is refused at once rather than after Celery's reconnect retries.
    CHECK_TIMEOUT = 2.0

    def __init__(self, eager: bool = False) -> None:
        self.eager = eager
        self._client: redis.Redis | None = None

    def check(self) -> None:
        """Raise ServiceUnavailableError, naming the broker, if it can't take a run now."""
        url = str(celery_app.conf.broker_url or "")
        if _in_process(self.eager) or not url.startswith(("redis://", "rediss://")):
            return  # in-process: there is no broker to reach
        if self._client is None:
            self._client = redis.Redis.from_url(
                url, socket_connect_timeout=self.CHECK_TIMEOUT, socket_timeout=self.CHECK_TIMEOUT
            )
        try:
            self._client.ping()
        except redis.RedisError:
            raise ServiceUnavailableError(broker_unreachable(url)) from None

    def enqueue(self, run_id: str, plan: RunPlan) -> None:
        _in_process(self.eager)
        try:
            build_canvas(run_id, plan).apply_async()
        except Exception:
            # Celery's own error for a lost broker ("Retry limit exceeded … must be
            # restarted") names neither the broker nor the fix; say both when that is it.
            self.check()
            raise
        _forget_pending(run_id)

    def revoke(self, run_id: str, plan: RunPlan) -> None:
        ids = [step_task_id(run_id, s) for s in plan.steps] + [finalize_task_id(run_id)]
        # Steps already running finish their current attempt; every later step sees the
        # run cancelled and skips, so revocation is an optimisation, not the guarantee.
        celery_app.control.revoke(ids)


class CeleryNotificationQueue:
    """pipeline.notifications.NotificationQueue on Celery: one task per channel, so a
    retry of one channel never re-sends the others."""

    def queue(self, run_id: str, status: str, channel: str) -> None:
        _in_process(False)
        # Nobody waits for this task's result: no result subscription is left behind.
        _task(SEND_NOTIFICATION, run_id, status, channel).apply_async(ignore_result=True)


def _forget_pending(run_id: str) -> None:
    """Drop this process's interest in the run's Celery results.

    Runs are followed in the metadata DB, not through Celery results, but publishing a
    task subscribes the client to its result channel and the backend keeps the result
    objects alive. Left alone, their cleanup runs at interpreter exit, when redis-py can
    no longer connect, and prints a traceback. Celery has no public call for "forget my
    pending results", so this reads the async backend's registry (absent on other
    backends, where there is nothing to do).
    """
    backend = celery_app.backend
    for mapping in list(getattr(backend, "_pending_results", ()) or ()):
        for task_id in [t for t in list(mapping) if str(t).startswith(f"{run_id}:")]:
            for waiter in list(mapping.get(task_id, {}).values()):
                backend.remove_pending_result(waiter)
