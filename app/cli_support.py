"""Helpers shared by app/cli.py and the command modules it registers. Kept apart from
app/cli.py so they import without a cycle."""

from __future__ import annotations

import sys
from datetime import date
from typing import TYPE_CHECKING, NoReturn

import click

from pipeline.services import Services
from pipeline.settings import Settings

if TYPE_CHECKING:
    from pipeline.store import RunStore

EXIT_PROBLEMS = 1
EXIT_USAGE = 2


def fail(message: str, code: int = EXIT_PROBLEMS) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def parse_day(value: str, name: str, code: int = EXIT_USAGE) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{name} must be a date as YYYY-MM-DD, got {value!r}", code)


def migrated_store(settings: Settings) -> RunStore:
    """The run store, on a metadata DB migrated to the current schema."""
    from pipeline.db import make_engine, upgrade
    from pipeline.store import RunStore

    upgrade(settings.database_url)
    return RunStore(make_engine(settings.database_url))


def cli_services() -> Services:
    """Migrated DB and services wired to Celery (runs enqueue, run ends notify)."""
    from pipeline.db import upgrade
    from pipeline.services import build_services
    from tasks.canvas import CeleryDispatcher
    from tasks.notifications import CeleryNotificationQueue
    from tasks.runtime import use_services

    settings = Settings.from_env()
    upgrade(settings.database_url)
    svc = build_services(
        settings, CeleryDispatcher(eager=settings.eager), notifications=CeleryNotificationQueue()
    )
    use_services(svc)
    return svc


def when(value: object) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else "-"
