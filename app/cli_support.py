"""Helpers shared by the command modules that app/cli.py registers (schedules,
notifications, backfill). Kept apart from app/cli.py so they import without a cycle."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from pipeline.services import Services
from pipeline.settings import Settings

EXIT_PROBLEMS = 1


def fail(message: str, code: int = EXIT_PROBLEMS) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def cli_services() -> Services:
    """Migrated DB and services wired to Celery (runs enqueue, run ends notify)."""
    from pipeline.db import upgrade
    from pipeline.services import build_services
    from tasks.canvas import CeleryDispatcher
    from tasks.notifications import CeleryNotificationQueue
    from tasks.runtime import use_services

    settings = Settings.from_env()
    upgrade(settings.database_url)
    svc = build_services(settings, CeleryDispatcher(), notifications=CeleryNotificationQueue())
    use_services(svc)
    return svc


def when(value: object) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else "-"
