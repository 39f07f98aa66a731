"""`pipeline-ops validate`, `run`, `status` and `reap`: pipeline files and runs."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click

from app.cli.output import echo_json, wants_json
from app.cli.support import EXIT_PROBLEMS, EXIT_USAGE, fail, parse_day
from pipeline.bootstrap import cli_services
from pipeline.settings import Settings
from pipeline.storage import state
from pipeline.storage.base import RunStore
from pipeline.storage.records import as_dict
from pipeline_ops_core.errors import (
    ConflictError,
    PipelineOpsError,
    QuotaExceededError,
    RunValidationError,
)


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def validate(paths: tuple[Path, ...]) -> None:
    """Validate pipeline files (default: every file under the configs directory)."""
    from pipeline.definition.validate import validate_paths

    targets = list(paths) or [Settings.from_env().configs_dir]
    problems = validate_paths(targets)
    for problem in problems:
        click.echo(str(problem))
    if problems:
        click.echo(f"{len(problems)} problem(s)", err=True)
        sys.exit(EXIT_PROBLEMS)
    click.echo("ok: all pipeline files are valid")


@click.command()
@click.option(
    "--output", "-o", type=click.Path(path_type=Path), help="Write to this file, not stdout."
)
def schema(output: Path | None) -> None:
    """Print the pipeline file's JSON Schema (step configs included), for editors."""
    import json

    from pipeline.definition.json_schema import pipeline_json_schema

    text = json.dumps(pipeline_json_schema(), indent=2) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}")


@click.command()
@click.argument("pipeline_path", metavar="PROVIDER/DOMAIN/PIPELINE")
@click.option("--org", "org_slug", required=True, help="Organization slug.")
@click.option("--date", "one_date", help="Run for one day (YYYY-MM-DD).")
@click.option("--start-date", help="First day of the range (YYYY-MM-DD).")
@click.option("--end-date", help="Last day of the range, inclusive (YYYY-MM-DD).")
@click.option("--credential", "credential_id", help="Credential id (default: default).")
@click.option("--param", "params", multiple=True, help="Extra parameter KEY=VALUE.")
@click.option("--local", is_flag=True, help="Run in this process, without Redis or a worker.")
@click.option("--wait", is_flag=True, help="Wait for the run and show progress per step.")
def run(
    pipeline_path: str,
    org_slug: str,
    one_date: str | None,
    start_date: str | None,
    end_date: str | None,
    credential_id: str | None,
    params: tuple[str, ...],
    local: bool,
    wait: bool,
) -> None:
    """Start a pipeline run for an org."""
    from pipeline.runs.service import RunRequest

    parts = pipeline_path.strip("/").split("/")
    if len(parts) != 3:
        fail("pipeline must be PROVIDER/DOMAIN/PIPELINE, e.g. demo/sample/genai_usage", EXIT_USAGE)
    if one_date and (start_date or end_date):
        fail("use either --date or --start-date/--end-date", EXIT_USAGE)
    if one_date:
        start = end = parse_day(one_date, "--date")
    else:
        start = parse_day(start_date, "--start-date") if start_date is not None else None
        end = parse_day(end_date, "--end-date") if end_date is not None else None
    extra: dict[str, str] = {}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"--param must be KEY=VALUE, got {item!r}", EXIT_USAGE)
        extra[key] = value
    if local:
        # Runs every task in this process. Must precede the first import of the Celery
        # app, which reads celeryconfig.
        os.environ["PIPELINE_OPS_EAGER"] = "1"
    svc = cli_services()
    request = RunRequest(
        org_slug=org_slug,
        provider=parts[0],
        domain=parts[1],
        pipeline=parts[2],
        start_date=start,
        end_date=end,
        credential_id=credential_id,
        params=extra,
        trigger="cli",
    )
    try:
        run_row = svc.runs.start(request)
    except ConflictError as exc:
        fail(f"{exc} (run {exc.existing_run_id})")
    except QuotaExceededError as exc:
        fail(f"{exc}; retry in {exc.retry_after}s")
    except RunValidationError as exc:
        fail(f"{exc} (run {exc.run_id})")
    except PipelineOpsError as exc:
        fail(str(exc))
    run_id = run_row.run_id
    click.echo(f"run_id: {run_id}")
    if local or wait:
        final = _follow(svc.store, run_id, poll=0.0 if local else 1.0)
        sys.exit(0 if final == state.COMPLETED else EXIT_PROBLEMS)


def _follow(store: RunStore, run_id: str, poll: float, timeout: float = 24 * 3600) -> str:
    """Print each step's progress as it changes; return the final run status."""
    seen: dict[tuple[str, int], str] = {}
    deadline = time.monotonic() + timeout
    while True:
        for attempt in store.step_attempts(run_id):
            key = (attempt.step_id, attempt.attempt)
            if seen.get(key) != attempt.status:
                seen[key] = attempt.status
                extra = ""
                if attempt.status == "completed":
                    extra = f" in {attempt.duration_ms} ms, {attempt.rows_written} rows"
                elif attempt.error:
                    extra = f": {attempt.error}"
                click.echo(
                    f"  {attempt.step_id:<24} attempt {attempt.attempt}: {attempt.status}{extra}"
                )
        run = store.get_run(run_id)
        if run.status in state.TERMINAL or time.monotonic() > deadline:
            break
        time.sleep(poll or 0.2)
    click.echo(f"status: {run.status}")
    if run.error_message:
        click.echo(f"error: {run.error_message}")
    return str(run.status)


@click.command()
@click.argument("run_id")
@click.option("--org", "org_slug", help="Only this org's runs (a prefix is looked up there).")
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON.")
def status(run_id: str, org_slug: str | None, as_json: bool) -> None:
    """Show a run and its steps. RUN_ID may be the first 8 or more characters of the id."""
    from app.api.presenters import run_outcome
    from pipeline.storage.run_store import RunIdError

    store = cli_services().store
    try:
        run_id = store.resolve_run_id(run_id, org_slug)
    except RunIdError as exc:
        fail(str(exc), EXIT_USAGE)
    except PipelineOpsError as exc:
        fail(str(exc))
    run = store.get_run(run_id, org_slug=org_slug)
    if run is None:
        fail(f"run {run_id} not found")
    attempts = store.step_attempts(run_id)
    outcome = run_outcome(run, attempts)
    if wants_json(as_json):
        shown = {k: v for k, v in run.as_dict().items() if k != "plan"}
        echo_json({"run": shown, **outcome, "steps": [as_dict(a) for a in attempts]})
        return
    click.echo(f"run_id:    {run.run_id}")
    click.echo(f"org:       {run.org_slug}")
    click.echo(f"pipeline:  {run.pipeline_id} ({run.pipeline_path})")
    click.echo(f"dates:     {run.start_date} .. {run.end_date}")
    click.echo(f"status:    {run.status}")
    click.echo(f"rows:      {outcome['rows_written']}")
    if run.error_message:
        click.echo(f"error:     {run.error_message}")
    for warning in outcome["warnings"]:
        click.echo(f"warning:   {warning}")
    for a in attempts:
        click.echo(
            f"  {a.step_id:<24} attempt {a.attempt}  {a.status:<10} "
            f"{a.duration_ms or 0:>7} ms  {a.rows_written:>8} rows"
        )


@click.command()
def reap() -> None:
    """Fail runs whose heartbeat stopped and release their slots (beat does this every minute)."""
    reaped = cli_services().runs.reap()
    click.echo(f"reaped {len(reaped)} run(s)" + (f": {', '.join(reaped)}" if reaped else ""))
