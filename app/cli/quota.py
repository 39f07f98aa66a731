"""`pipeline-ops quota show`: an org's limits, usage and leases (`orgs set-limits` sets them)."""

from __future__ import annotations

import json
from typing import Any

import click

from app.cli.output import wants_json
from app.cli.support import fail, org_and_args, org_services
from pipeline_ops_core.errors import PipelineOpsError


def _mirror_line(mirror: dict[str, Any]) -> str:
    if "leases" not in mirror:
        return str(mirror["status"])
    return (
        f"{mirror['status']} ({len(mirror['leases'])} leases, {mirror['daily_runs']} runs "
        f"today, {mirror['monthly_runs']} this month)"
    )


@click.group()
def quota() -> None:
    """Inspect quota usage."""


@quota.command("show")
@org_and_args()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def show(org_slug: str, as_json: bool) -> None:
    """Print an org's limits, usage (today, this month, running) and active leases."""
    try:
        report = org_services(org_slug).plans.usage(org_slug)
    except PipelineOpsError as exc:
        fail(str(exc))
    if wants_json(as_json):
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
