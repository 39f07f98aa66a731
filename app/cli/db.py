"""`pipeline-ops db`: the metadata database itself (retention)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import click

from app.cli.output import output_format
from app.cli.support import EXIT_USAGE, fail
from pipeline.bootstrap import cli_services

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
    """The metadata database."""


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
