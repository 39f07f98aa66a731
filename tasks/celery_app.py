"""The Celery application the workers run: `celery -A tasks.celery_app worker -P prefork`.

The app itself is pipeline.queue's (the API and the CLI send with it, by task name); the
task modules it loads are celeryconfig.include. This module adds what only a worker needs:
fresh services in each prefork child, and JSON logs with task context and redaction.
"""

from __future__ import annotations

import logging

from celery.signals import after_setup_logger, after_setup_task_logger, worker_process_init
from kombu import Connection

from pipeline.observability.redact import display_url
from pipeline.queue import celery_app as app
from tasks import heartbeat  # noqa: F401  (connects the worker's heartbeat signals)

__all__ = ["app"]


@worker_process_init.connect
def _fresh_services(**_: object) -> None:
    # Database pools and clients must not cross the fork into a prefork child.
    from tasks.runtime import reset_services

    reset_services()


class BrokerUrlFilter(logging.Filter):
    """Kombu writes a broker URL as `redis://:**@host` whether or not it has a password, and
    the redactor turns that into `redis://:[REDACTED]@host`: a credential nobody set. Each
    configured URL is shown as `display_url` shows it instead: masked only where it has one.
    """

    def __init__(self, urls: list[str]) -> None:
        super().__init__()
        self.shown = {Connection(url).as_uri(): display_url(url) for url in urls if url}

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        fixed = message
        for kombu_form, ours in self.shown.items():
            fixed = fixed.replace(kombu_form, ours)
        if fixed != message:
            record.msg, record.args = fixed, None
        return True


@after_setup_logger.connect
@after_setup_task_logger.connect
def _json_logs(logger: object, loglevel: object = None, **_: object) -> None:
    # Celery sets up its own handlers; swap their formatter for JSON with redaction.
    from pipeline.observability.logs import JsonFormatter
    from tasks.log_context import TaskContextFilter

    urls = [str(app.conf.broker_url or ""), str(app.conf.result_backend or "")]
    for handler in getattr(logger, "handlers", []):
        handler.setFormatter(JsonFormatter())
        # Records logged while a task runs get its run and step ids.
        handler.addFilter(TaskContextFilter())
        handler.addFilter(BrokerUrlFilter(urls))
