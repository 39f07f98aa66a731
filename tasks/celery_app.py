"""The Celery application. Workers: `celery -A tasks.celery_app worker -P prefork`."""

from __future__ import annotations

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger, worker_process_init

app = Celery(
    "pipeline_ops", include=["tasks.steps", "tasks.lifecycle", "tasks.beat", "tasks.notifications"]
)
app.config_from_object("celeryconfig")


@worker_process_init.connect
def _fresh_services(**_: object) -> None:
    # Database pools and clients must not cross the fork into a prefork child.
    from tasks.runtime import reset_services

    reset_services()


@after_setup_logger.connect
@after_setup_task_logger.connect
def _json_logs(logger: object, loglevel: object = None, **_: object) -> None:
    # Celery sets up its own handlers; swap their formatter for JSON with redaction.
    from pipeline.logs import JsonFormatter
    from tasks.log_context import TaskContextFilter

    for handler in getattr(logger, "handlers", []):
        handler.setFormatter(JsonFormatter())
        # Records logged while a task runs get its run and step ids.
        handler.addFilter(TaskContextFilter())
