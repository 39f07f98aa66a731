"""`pipeline-ops runs list|show|logs|steps|transitions|cancel|rerun`: the API's run
endpoints on the command line, with the same JSON shapes (app/api/schemas.py)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import click

from app.cli.output import echo_json, echo_table, wants_json
from app.cli.support import EXIT_USAGE, fail, org_services
from pipeline.bootstrap import Services
from pipeline.storage import state
from pipeline.storage.records import RunRecord
from pipeline_ops_core.errors import ConflictError, PipelineOpsError, QuotaExceededError

MAX_LIST = 1000


def _org_option(func: Any) -> Any:
    return click.option("--org", "org_slug", required=True, help="Organization slug.")(func)


def _find(svc: Services, org_slug: str, ref: str) -> RunRecord:
    """The org's run by id or unique prefix, as the API finds it (another org's run is
    not found)."""
    from pipeline.storage.run_store import RunIdError

    try:
        run_id = svc.store.resolve_run_id(ref, org_slug)
    except RunIdError as exc:
        fail(str(exc), EXIT_USAGE)
    except PipelineOpsError as exc:
        fail(str(exc))
    run = svc.store.get_run(run_id, org_slug=org_slug)
    if run is None:
        fail(f"run {ref} not found")
    return run


@click.group()
def runs() -> None:
    """List, inspect, cancel and re-run runs."""


@runs.command("list")
@_org_option
@click.option("--status", type=click.Choice(state.ALL), help="Only runs in this status.")
@click.option("--pipeline", "pipeline_id", help="Only runs of this pipeline id.")
@click.option("--limit", default=50, show_default=True, help=f"At most this many (<= {MAX_LIST}).")
def runs_list(org_slug: str, status: str | None, pipeline_id: str | None, limit: int) -> None:
    """The org's runs, newest first (the API's GET /pipelines/history/ORG)."""
    from app.api.schemas import HistorySchema

    if not 1 <= limit <= MAX_LIST:
        fail(f"--limit must be between 1 and {MAX_LIST}", EXIT_USAGE)
    svc = org_services(org_slug)
    rows = svc.store.list_runs(org_slug, limit=limit, status=status, pipeline_id=pipeline_id)
    if wants_json():
        runs = [run.as_dict() for run in rows]
        echo_json(HistorySchema().dump({"runs": runs, "next_cursor": None}))
        return
    echo_table(
        [run.as_dict() for run in rows],
        ["run_id", "pipeline_id", "status", "start_date", "end_date", "created_at"],
        empty="(no runs)",
    )


@runs.command("show")
@click.argument("run_id")
@_org_option
def runs_show(run_id: str, org_slug: str) -> None:
    """A run and a summary of its steps (GET /pipelines/status/ORG/RUN_ID)."""
    from app.api.presenters import run_outcome, step_summary
    from app.api.schemas import RunStatusSchema

    svc = org_services(org_slug)
    run = _find(svc, org_slug, run_id)
    attempts = svc.store.step_attempts(run.run_id)
    body = RunStatusSchema().dump(
        {**run.as_dict(), **run_outcome(run, attempts), "steps": step_summary(run, attempts)}
    )
    if wants_json():
        echo_json(body)
        return
    for key in ("run_id", "org_slug", "pipeline_id", "status", "start_date", "end_date"):
        click.echo(f"{key + ':':<15}{body.get(key)}")
    for key in ("created_at", "started_at", "ended_at", "rows_written", "error_message"):
        if body.get(key) is not None:
            click.echo(f"{key + ':':<15}{body[key]}")
    for warning in body["warnings"]:
        click.echo(f"{'warning:':<15}{warning}")
    echo_table(body["steps"], ["step_id", "status", "attempts", "rows_written"])


def _print_record(
    run_id: str,
    org_slug: str,
    body_of: Callable[[Services, RunRecord], dict[str, Any]],
    table: Callable[[dict[str, Any]], None],
) -> None:
    """One of a run's records (its API twin's body) as JSON or as a table."""
    svc = org_services(org_slug)
    body = body_of(svc, _find(svc, org_slug, run_id))
    if wants_json():
        echo_json(body)
    else:
        table(body)


def _print_lines(body: dict[str, Any]) -> None:
    for line in body["lines"]:
        where = f" [{line['step_id']}#{line['attempt']}]" if line.get("step_id") else ""
        click.echo(f"{line['ts']} {line['level']:<7}{where} {line['message']}")


@runs.command("logs")
@click.argument("run_id")
@_org_option
def runs_logs(run_id: str, org_slug: str) -> None:
    """The run's log lines, oldest first (GET /pipelines/logs/ORG/RUN_ID)."""
    from app.api.schemas import RunLogsSchema

    _print_record(
        run_id,
        org_slug,
        lambda svc, run: RunLogsSchema().dump(
            {"run": run.as_dict(), "lines": svc.store.lines(run.run_id)}
        ),
        _print_lines,
    )


@runs.command("steps")
@click.argument("run_id")
@_org_option
def runs_steps(run_id: str, org_slug: str) -> None:
    """Every step attempt of the run (GET /pipelines/logs/ORG/RUN_ID/steps)."""
    from app.api.schemas import StepAttemptsSchema

    columns = ["step_id", "attempt", "status", "started_at", "duration_ms", "rows_written", "error"]
    _print_record(
        run_id,
        org_slug,
        lambda svc, run: StepAttemptsSchema().dump({"steps": svc.store.step_attempts(run.run_id)}),
        lambda body: echo_table(body["steps"], columns),
    )


@runs.command("transitions")
@click.argument("run_id")
@_org_option
def runs_transitions(run_id: str, org_slug: str) -> None:
    """Every status change of the run (GET /pipelines/logs/ORG/RUN_ID/transitions)."""
    from app.api.schemas import TransitionsSchema

    _print_record(
        run_id,
        org_slug,
        lambda svc, run: TransitionsSchema().dump(
            {"transitions": svc.store.transitions(run.run_id)}
        ),
        lambda body: echo_table(body["transitions"], ["at", "from_status", "to_status", "reason"]),
    )


def _accepted(svc: Services, run: RunRecord) -> dict[str, Any]:
    from app.api.presenters import links

    base = svc.settings.public_base_url
    return {
        "run_id": run.run_id,
        "status": run.status,
        "links": links(base, run.org_slug, run.run_id),
    }


@runs.command("cancel")
@click.argument("run_id")
@_org_option
def runs_cancel(run_id: str, org_slug: str) -> None:
    """Cancel an active run (POST /pipelines/cancel/ORG/RUN_ID)."""
    svc = org_services(org_slug)
    run = _find(svc, org_slug, run_id)
    try:
        result = svc.runs.cancel(org_slug, run.run_id)
    except PipelineOpsError as exc:
        fail(str(exc))
    if wants_json():
        echo_json(_accepted(svc, result))
        return
    click.echo(f"run_id: {result.run_id}\nstatus: {result.status}")


@runs.command("rerun")
@click.argument("run_id")
@_org_option
@click.option(
    "--from-failed",
    is_flag=True,
    help="Reuse the steps the run completed; start at the step that failed.",
)
@click.option("--local", is_flag=True, help="Run in this process, without Redis or a worker.")
def runs_rerun(run_id: str, org_slug: str, from_failed: bool, local: bool) -> None:
    """Start a new run with an ended run's pipeline, dates, credential and parameters.

    The new run has the same idempotency key, so it is refused while another run for
    the same work is active. With --from-failed, the steps the run completed are reused
    rather than run again.
    """
    if local:
        # As `run --local`: before the Celery app first reads celeryconfig.
        os.environ["PIPELINE_OPS_EAGER"] = "1"
    svc = org_services(org_slug)
    old = _find(svc, org_slug, run_id)
    if old.status not in state.TERMINAL:
        fail(f"run {old.run_id} is {old.status}; only an ended run can be re-run")
    try:
        new = svc.runs.rerun(org_slug, old.run_id, from_failed=from_failed)
    except ConflictError as exc:
        fail(f"{exc} (run {exc.existing_run_id})")
    except QuotaExceededError as exc:
        fail(f"{exc}; retry in {exc.retry_after}s")
    except PipelineOpsError as exc:
        fail(str(exc))
    reused = sorted(new.plan.reused) if new.plan is not None else []
    if wants_json():
        echo_json({**_accepted(svc, new), "rerun_of": old.run_id, "reused_steps": reused})
        return
    click.echo(f"run_id: {new.run_id}")
    click.echo(f"rerun_of: {old.run_id}")
    if from_failed:
        click.echo(f"reused steps: {', '.join(reused) if reused else '(none)'}")
