"""`pipeline-ops orgs set-limits` and `pipeline-ops quota show` (registered in app/cli.py).

Operators script `set-limits`, so its flag names are a contract: --daily, --monthly,
--concurrent, --status.
"""

from __future__ import annotations

import json
from typing import Any

import click

from app.cli_support import EXIT_USAGE, fail
from pipeline.bootstrap import cli_services
from pipeline_ops_core.errors import PipelineOpsError
from quota.base import PlanAdmin
from quota.plans import STATUSES


def _plans(org_slug: str) -> PlanAdmin:
    """Plan administration on this environment's metadata DB; exits if the org is unknown."""
    svc = cli_services()
    if svc.store.get_org(org_slug) is None:
        fail(f"org {org_slug!r} not found")
    return svc.plans


def _mirror_line(mirror: dict[str, Any]) -> str:
    if "leases" not in mirror:
        return str(mirror["status"])
    return (
        f"{mirror['status']} ({len(mirror['leases'])} leases, {mirror['daily_runs']} runs "
        f"today, {mirror['monthly_runs']} this month)"
    )


@click.command("set-limits")
@click.argument("org_slug")
@click.option("--daily", type=click.IntRange(min=0), help="Runs per UTC day.")
@click.option("--monthly", type=click.IntRange(min=0), help="Runs per UTC month.")
@click.option("--concurrent", type=click.IntRange(min=0), help="Runs active at once.")
@click.option(
    "--status", type=click.Choice(STATUSES, case_sensitive=False), help="Subscription status."
)
def set_limits(
    org_slug: str,
    daily: int | None,
    monthly: int | None,
    concurrent: int | None,
    status: str | None,
) -> None:
    """Set an org's plan limits and status; unset values keep their current value."""
    if daily is None and monthly is None and concurrent is None and status is None:
        fail("give at least one of --daily, --monthly, --concurrent or --status", EXIT_USAGE)
    plans = _plans(org_slug)
    try:
        plan = plans.set_limits(
            org_slug, daily=daily, monthly=monthly, concurrent=concurrent, status=status
        )
    except PipelineOpsError as exc:
        fail(str(exc))
    for key, value in plan.as_dict().items():
        click.echo(f"{key}: {value}")


@click.group()
def quota() -> None:
    """Inspect quota usage."""


@quota.command("show")
@click.argument("org_slug")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def show(org_slug: str, as_json: bool) -> None:
    """Print an org's limits, usage (today, this month, running) and active leases."""
    try:
        report = _plans(org_slug).usage(org_slug)
    except PipelineOpsError as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    plan, usage, mirror = report["plan"], report["usage"], report["mirror"]
    lines = [
        ("org", org_slug),
        ("status", f"{plan['status']} (plan source: {plan['source']})"),
        (
            "limits",
            f"daily {plan['daily_limit']}, monthly {plan['monthly_limit']}, "
            f"concurrent {plan['concurrent_limit']}",
        ),
        ("today", f"{usage['day']}: {usage['daily_runs']} of {plan['daily_limit']} runs"),
        ("month", f"{usage['month']}: {usage['monthly_runs']} of {plan['monthly_limit']} runs"),
        ("running", f"{usage['concurrent_running']} of {plan['concurrent_limit']}"),
        ("finished", f"{usage['succeeded_runs']} succeeded, {usage['failed_runs']} failed"),
        ("mirror", _mirror_line(mirror)),
    ]
    for label, text in lines:
        click.echo(f"{label + ':':<10} {text}")
    leases = usage["leases"]
    click.echo(f"leases:    {len(leases)} active")
    for lease in leases:
        click.echo(
            f"  {lease['run_id']}  acquired {lease['acquired_at']}  expires {lease['expires_at']}"
        )
