"""The Celery application. Workers: `celery -A tasks.celery_app worker -P prefork`."""

from __future__ import annotations

from celery import Celery
from celery.signals import worker_process_init

app = Celery("pipeline_ops", include=["tasks.steps", "tasks.lifecycle"])
app.config_from_object("celeryconfig")


@worker_process_init.connect
def _fresh_services(**_: object) -> None:
    # Database pools and clients must not cross the fork into a prefork child.
    from tasks.runtime import reset_services

    reset_services()
