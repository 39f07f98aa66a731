"""`pipeline-ops runs rerun RUN_ID [--from-failed]`: run a run again, whole or from the
step that failed."""

from __future__ import annotations

import click

from app.cli.support import fail
from pipeline.bootstrap import cli_services
from pipeline_ops_core.errors import ConflictError, PipelineOpsError, QuotaExceededError


@click.group()
def runs() -> None:
    """Runs of pipelines."""


@runs.command()
@click.argument("run_id")
@click.option("--org", "org_slug", required=True, help="The run's organization.")
@click.option(
    "--from-failed",
    is_flag=True,
    help="Reuse the steps the run completed; start at the step that failed.",
)
def rerun(run_id: str, org_slug: str, from_failed: bool) -> None:
    """Start a new run with the same pipeline, dates, credential and params."""
    svc = cli_services()
    try:
        ref = svc.store.resolve_run_id(run_id, org_slug)
        new = svc.runs.rerun(org_slug, ref, from_failed=from_failed)
    except ConflictError as exc:
        fail(f"{exc} (run {exc.existing_run_id})")
    except QuotaExceededError as exc:
        fail(f"{exc}; retry in {exc.retry_after}s")
    except PipelineOpsError as exc:
        fail(str(exc))
    reused = sorted((new.get("plan") or {}).get("reused") or {})
    click.echo(f"run_id: {new['run_id']}")
    if from_failed:
        click.echo(f"reused steps: {', '.join(reused) if reused else '(none)'}")
