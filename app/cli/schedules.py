"""`pipeline-ops schedules enable|disable|list|dispatches|dispatch`."""

from __future__ import annotations

import click

from app.cli.output import echo_json, wants_json
from app.cli.support import fail, when
from pipeline.bootstrap import cli_services
from pipeline.schedules.service import CATCH_UP_POLICIES, ScheduleService
from pipeline_ops_core.errors import PipelineOpsError


def _service() -> ScheduleService:
    return cli_services().schedules


def _show(row: dict[str, object]) -> None:
    state = "enabled" if row["enabled"] else "disabled"
    cron = row["effective_cron"] or "-"
    source = "override" if row["cron"] else "yaml"
    click.echo(
        f"{row['org_slug']}\t{row['pipeline_path']}\t{state}\tcron {cron!r} ({source})\t"
        f"tz {row['timezone'] or 'UTC'}\tcredential {row['credential_id']}\t"
        f"catch-up {row['catch_up']}"
        + (f" (limit {row['catch_up_limit']})" if row["catch_up"] == "all" else "")
        + f"\tlast {when(row['last_tick'])}\tnext {when(row['next_tick'])}"
    )


@click.group()
def schedules() -> None:
    """Per-org pipeline schedules (beat dispatches them every minute)."""


@schedules.command("enable")
@click.argument("pipeline_path", metavar="PROVIDER/DOMAIN/PIPELINE")
@click.option("--org", "org_slug", required=True, help="Organization slug.")
@click.option("--credential", "credential_id", help="Credential id (default: default).")
@click.option("--cron", help="5-field cron overriding the pipeline YAML's `schedule`.")
@click.option("--timezone", help="IANA timezone the cron is read in (default: UTC).")
@click.option(
    "--catch-up",
    type=click.Choice(CATCH_UP_POLICIES),
    default="latest",
    show_default=True,
    help="Missed ticks (beat was down): run the latest only, all of them, or none.",
)
@click.option("--catch-up-limit", type=int, help="With --catch-up all: at most N ticks (24).")
def enable(
    pipeline_path: str,
    org_slug: str,
    credential_id: str | None,
    cron: str | None,
    timezone: str | None,
    catch_up: str,
    catch_up_limit: int | None,
) -> None:
    """Enable (or re-configure) an org's schedule for a pipeline."""
    try:
        row = _service().enable(
            org_slug,
            pipeline_path,
            credential_id=credential_id,
            cron=cron,
            timezone=timezone,
            catch_up=catch_up,
            catch_up_limit=catch_up_limit,
        )
    except PipelineOpsError as exc:
        fail(str(exc))
    _show(row)


@schedules.command("disable")
@click.argument("pipeline_path", metavar="PROVIDER/DOMAIN/PIPELINE")
@click.option("--org", "org_slug", required=True, help="Organization slug.")
def disable(pipeline_path: str, org_slug: str) -> None:
    """Disable an org's schedule (kept, with its history; enable turns it back on)."""
    try:
        row = _service().disable(org_slug, pipeline_path)
    except PipelineOpsError as exc:
        fail(str(exc))
    _show(row)


@schedules.command("list")
@click.option("--org", "org_slug", help="Only this org (default: every org).")
def list_schedules(org_slug: str | None) -> None:
    """List schedules with the cron in effect and the next tick."""
    try:
        rows = _service().list(org_slug)
    except PipelineOpsError as exc:
        fail(str(exc))
    if wants_json():
        from app.admin.schemas import ScheduleListSchema

        echo_json(ScheduleListSchema().dump({"schedules": rows}))
        return
    for row in rows:
        _show(row)
    if not rows:
        click.echo("no schedules")


@schedules.command("dispatches")
@click.argument("pipeline_path", metavar="PROVIDER/DOMAIN/PIPELINE")
@click.option("--org", "org_slug", required=True, help="Organization slug.")
@click.option("--limit", default=20, show_default=True, help="How many, newest first.")
def dispatches(pipeline_path: str, org_slug: str, limit: int) -> None:
    """What each tick did: started (run id), skipped (why, e.g. quota 429) or failed."""
    try:
        rows = _service().dispatches(org_slug, pipeline_path, limit)
    except PipelineOpsError as exc:
        fail(str(exc))
    if wants_json():
        from app.admin.schemas import DispatchListSchema

        echo_json(DispatchListSchema().dump({"dispatches": rows}))
        return
    for row in rows:
        click.echo(
            f"{when(row['scheduled_time'])}\t{row['status']}\t{row['run_id'] or '-'}"
            f"\t{row['reason'] or ''}"
        )


@schedules.command("dispatch")
def dispatch_now() -> None:
    """Dispatch due ticks once, now (what beat does every minute)."""
    report = cli_services().schedule_dispatcher.tick()
    click.echo("  ".join(f"{k} {v}" for k, v in report.as_dict().items()))
