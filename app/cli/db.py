"""`pipeline-ops db upgrade|check|prune`: the metadata DB's schema, changed only on
purpose, and its retention.

No other command migrates: web, workers, beat and the read commands check the revision
and refuse when the DB is behind, so a deploy migrates once (the Procfile's `release:`
line) instead of every process racing to.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import click
from sqlalchemy.exc import SQLAlchemyError

from app.cli.output import output_format
from app.cli.support import EXIT_USAGE, fail
from pipeline.bootstrap import cli_services
from pipeline.preflight import StartupRefused, preflight, unreachable_db
from pipeline.settings import Settings
from pipeline.storage.db import UPGRADE_HINT, revision_of, upgrade

_AGE = re.compile(r"^\s*(\d+)\s*([dhw])\s*$")
_UNIT = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def parse_age(value: str) -> timedelta:
    """`90d`, `12h`, `2w` as a timedelta; anything else is a usage error."""
    match = _AGE.match(value)
    if not match or int(match.group(1)) < 1:
        fail(f"--older-than must be a positive age like 90d, 12h or 2w, got {value!r}", EXIT_USAGE)
    return int(match.group(1)) * _UNIT[match.group(2)]


@click.group()
def db() -> None:
    """The metadata database: its schema and its retention."""


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


@db.command()
@click.option("--older-than", "older_than", required=True, help="Age cutoff: 90d, 12h, 2w.")
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@click.option("--batch-size", default=500, show_default=True, help="Runs per transaction.")
@click.pass_context
def prune(ctx: click.Context, older_than: str, dry_run: bool, batch_size: int) -> None:
    """Delete ended runs older than the cutoff and the rows hanging off them.

    Step logs, log lines, transitions, released quota leases and schedule dispatch rows
    go with their run. Active runs and the warehouse are never touched.
    """
    from pipeline.storage.prune import prune_runs

    if batch_size < 1:
        fail("--batch-size must be at least 1", EXIT_USAGE)
    cutoff = datetime.now(UTC) - parse_age(older_than)
    report = prune_runs(cli_services().store.engine, cutoff, dry_run=dry_run, batch_size=batch_size)
    if output_format(ctx) == "json":
        click.echo(json.dumps(report.as_dict(), indent=2, sort_keys=True))
        return
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"runs ended before {cutoff.isoformat()}: {verb}")
    for name, count in report.rows.items():
        click.echo(f"  {name:<20} {count}")
