"""The `pipeline-ops` command line.

Operator-level: it reads the same environment as the API and workers and talks to the
metadata database directly (its services come from pipeline.bootstrap.cli_services()),
so it needs no API key.

Each module here defines its click commands or groups; they are all added to `main`
below, and nowhere else.
"""

from __future__ import annotations

import click

from app.cli.backfill import backfill
from app.cli.credentials import credentials
from app.cli.datasets import bootstrap, bootstrap_sync
from app.cli.db import db
from app.cli.notifications import notifications
from app.cli.orgs import orgs
from app.cli.output import FORMATS
from app.cli.pipelines import pipelines
from app.cli.prices import prices
from app.cli.providers import providers
from app.cli.quota import quota
from app.cli.run_records import runs as runs_group
from app.cli.runs import reap, run, schema, status, validate
from app.cli.samples import samples
from app.cli.schedules import schedules
from app.cli.subscriptions import subscriptions


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pipeline-ops")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


@click.group()
@click.version_option(_version(), "--version", prog_name="pipeline-ops")
@click.option(
    "--output",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="How read commands print: aligned text, or JSON (stable keys, ISO 8601 times).",
)
@click.pass_context
def main(ctx: click.Context, output: str) -> None:
    """Pipeline Ops: multi-tenant cost-data pipelines."""
    ctx.ensure_object(dict)["output"] = output


for _command in (
    validate,
    schema,
    run,
    status,
    reap,
    bootstrap,
    bootstrap_sync,
    orgs,
    credentials,
    quota,
    schedules,
    notifications,
    backfill,
    providers,
    prices,
    subscriptions,
    samples,
    runs_group,
    pipelines,
    db,
):
    main.add_command(_command)

__all__ = ["main"]
