"""`pipeline-ops db upgrade|check`: the metadata DB's schema, changed only on purpose.

No other command migrates: web, workers, beat and the read commands check the revision
and refuse when the DB is behind, so a deploy migrates once (the Procfile's `release:`
line) instead of every process racing to.
"""

from __future__ import annotations

import click
from sqlalchemy.exc import SQLAlchemyError

from app.cli.support import fail
from pipeline.preflight import StartupRefused, preflight, unreachable_db
from pipeline.settings import Settings
from pipeline.storage.db import UPGRADE_HINT, revision_of, upgrade


@click.group()
def db() -> None:
    """The metadata database's schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Migrate the metadata DB to this code's revision (idempotent)."""
    settings = Settings.from_env()
    try:
        preflight(settings, schema=False)
        before = revision_of(settings.database_url)
        upgrade(settings.database_url)
        after = revision_of(settings.database_url)
    except StartupRefused as exc:
        fail(str(exc))
    except SQLAlchemyError as exc:
        fail(unreachable_db(settings, exc))
    was = ", ".join(before.current) or "empty"
    now = ", ".join(after.current)
    if before.current == after.current:
        click.echo(f"metadata DB: already at revision {now}")
    else:
        click.echo(f"metadata DB: upgraded from {was} to {now}")


@db.command("check")
def db_check() -> None:
    """Exit 0 if the metadata DB is at this code's revision, 1 if it is behind (or absent)."""
    settings = Settings.from_env()
    try:
        revision = revision_of(settings.database_url)
    except SQLAlchemyError as exc:
        fail(unreachable_db(settings, exc))
    if not revision.up_to_date:
        fail(f"{revision.describe()}: {UPGRADE_HINT}")
    click.echo(f"metadata DB: at revision {', '.join(revision.current)} (up to date)")
