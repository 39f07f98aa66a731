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
from app.cli.config import config
from app.cli.credentials import credentials
from app.cli.datasets import bootstrap, bootstrap_sync
from app.cli.db import db
from app.cli.doctor import doctor
from app.cli.notifications import notifications
from app.cli.orgs import orgs
from app.cli.providers import providers
from app.cli.quota import quota
from app.cli.runs import reap, run, status, validate
from app.cli.samples import samples
from app.cli.schedules import schedules
from app.cli.subscriptions import subscriptions
from app.cli.support import fail
from pipeline.preflight import StartupRefused


class _Main(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        # Production mode's refusals and a metadata DB behind the code: one clear message
        # and exit 1, from whichever command hit them.
        try:
            return super().invoke(ctx)
        except StartupRefused as exc:
            fail(str(exc))


@click.group(cls=_Main)
@click.version_option(package_name="pipeline-ops", prog_name="pipeline-ops")
def main() -> None:
    """Pipeline Ops: multi-tenant cost-data pipelines."""


for _command in (
    validate,
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
    subscriptions,
    samples,
    db,
    doctor,
    config,
):
    main.add_command(_command)

__all__ = ["main"]
