"""Bind the run and step ids of the task being executed to every log record it emits.

Lines logged by our code with explicit `extra=` already carry them; this covers the
rest — Celery's own "Task ... raised" line, library warnings — so that everything a
worker child logs during a run's task is attributable in the JSON output.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Any

from celery.signals import task_postrun, task_prerun

from pipeline.queue import FINALIZE_RUN, ON_RUN_ERROR, RUN_STEP, SEND_NOTIFICATION

# Task name -> the names of its leading positional arguments worth binding.
_BOUND_ARGS: dict[str, tuple[str, ...]] = {
    RUN_STEP: ("run_id", "step_id"),
    FINALIZE_RUN: ("run_id",),
    ON_RUN_ERROR: ("run_id",),
    SEND_NOTIFICATION: ("run_id",),
}

_current: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "pipeline_ops_task", default=None
)


@task_prerun.connect
def _bind(task_id: str | None = None, task: Any = None, args: Any = None, **_: Any) -> None:
    names = _BOUND_ARGS.get(getattr(task, "name", ""), ())
    bound: dict[str, Any] = {"task_id": task_id}
    bound.update(zip(names, args or (), strict=False))
    _current.set(bound)


@task_postrun.connect
def _unbind(**_: Any) -> None:
    _current.set(None)


class TaskContextFilter(logging.Filter):
    """Fills in run_id / step_id / task_id that a record does not carry itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_current.get() or {}).items():
            if getattr(record, key, None) is None:
                setattr(record, key, value)
        return True
