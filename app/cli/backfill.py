"""`pipeline-ops backfill PROVIDER/DOMAIN/PIPELINE --org ORG --start-date D --end-date D`."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import click

from app.cli.support import EXIT_PROBLEMS, EXIT_USAGE, fail, parse_day
from pipeline.bootstrap import cli_services
from pipeline_ops_core.errors import PipelineOpsError

EXIT_INTERRUPTED = 130


@contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold Ctrl-C until the block ends, then raise it: a run start is not cut in half."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def remember(signum: int, frame: FrameType | None) -> None:
        caught.append(signum)

    previous = signal.signal(signal.SIGINT, remember)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def _date_alias(value: str | None, old: str | None, name: str, old_name: str) -> str:
    if value is not None and old is not None:
        fail(f"give {name} only ({old_name} is its deprecated name)", EXIT_USAGE)
    if old is not None:
        click.echo(f"deprecated: {old_name}; use {name}", err=True)
        return old
    if value is None:
        fail(f"{name} is required", EXIT_USAGE)
    return value


@click.command()
@click.argument("pipeline_path", metavar="PROVIDER/DOMAIN/PIPELINE")
@click.option("--org", "org_slug", required=True, help="Organization slug.")
@click.option("--start-date", "first", help="First date (YYYY-MM-DD).")
@click.option("--end-date", "last", help="Last date, inclusive (YYYY-MM-DD).")
@click.option("--from", "old_first", hidden=True, help="Deprecated: --start-date.")
@click.option("--to", "old_last", hidden=True, help="Deprecated: --end-date.")
@click.option("--concurrency", default=1, show_default=True, help="Runs in flight at once.")
@click.option("--credential", "credential_id", help="Credential id (default: default).")
@click.option("--poll", default=1.0, show_default=True, help="Seconds between status checks.")
@click.option("--force", is_flag=True, help="Run dates that already completed again too.")
def backfill(
    pipeline_path: str,
    org_slug: str,
    first: str | None,
    last: str | None,
    old_first: str | None,
    old_last: str | None,
    concurrency: int,
    credential_id: str | None,
    poll: float,
    force: bool,
) -> None:
    """Run a pipeline once per date. Re-running resumes: completed dates are skipped
    (with --force they run again; dates still running are joined, never started twice)."""
    from pipeline.backfill import Backfill, Progress, date_range

    first = _date_alias(first, old_first, "--start-date", "--from")
    last = _date_alias(last, old_last, "--end-date", "--to")
    from pipeline.runs.service import RunRequest
    from pipeline.schedules.service import split_path

    try:
        provider, domain, pipeline = split_path(pipeline_path)
        dates = date_range(parse_day(first, "--start-date"), parse_day(last, "--end-date"))
        template = RunRequest(org_slug, provider, domain, pipeline, credential_id=credential_id)
        job = Backfill(
            cli_services().runs,
            template,
            dates,
            concurrency,
            force=force,
            poll_seconds=poll,
            start_guard=deferred_interrupt,
        )
    except PipelineOpsError as exc:
        fail(str(exc))

    def report(progress: Progress) -> None:
        for event in progress.events:
            click.echo(f"  {event}")
        click.echo(progress.line())

    click.echo(
        f"backfill {pipeline_path} for {org_slug}: {dates[0]}..{dates[-1]} "
        f"({len(dates)} dates, concurrency {concurrency})"
    )
    try:
        final = job.execute(report)
    except KeyboardInterrupt:
        click.echo(
            "interrupted: runs already started keep running; run the same command again to resume",
            err=True,
        )
        sys.exit(EXIT_INTERRUPTED)
    except PipelineOpsError as exc:
        fail(str(exc))
    for day, why in sorted(job.failed_dates.items()):
        click.echo(f"failed: {day}: {why}")
    click.echo(f"finished: {final.line()}")
    sys.exit(EXIT_PROBLEMS if final.failed else 0)
