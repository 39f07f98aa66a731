"""`pipeline-ops orgs …`: create and list organizations, rotate and revoke their API keys,
set their plan limits.

Operators script `set-limits`, so its flag names are a contract: --daily, --monthly,
--concurrent, --status.
"""

from __future__ import annotations

import click

from app.cli.output import echo_json, wants_json
from app.cli.support import EXIT_USAGE, fail, org_and_args, org_services
from pipeline.bootstrap import cli_services
from pipeline_ops_core.errors import PipelineOpsError
from quota.plans import STATUSES


@click.group()
def orgs() -> None:
    """Manage organizations."""


@orgs.command("create")
@click.argument("org_slug")
@click.option("--name", help="Display name (default: the slug).")
def orgs_create(org_slug: str, name: str | None) -> None:
    """Create an org and print its API key once."""
    try:
        api_key = cli_services().orgs.create(org_slug, name)
    except PipelineOpsError as exc:
        fail(str(exc))
    click.echo(f"org_slug: {org_slug}")
    click.echo(f"api_key: {api_key}")
    click.echo("Store the key now: it is not shown again.", err=True)


@orgs.command("list")
def orgs_list() -> None:
    """List organizations."""
    rows = cli_services().store.list_orgs()
    if wants_json():
        from app.admin.schemas import OrgListSchema

        echo_json(OrgListSchema().dump({"orgs": rows}))  # GET /admin/orgs
        return
    for org in rows:
        click.echo(f"{org['org_slug']}\t{org['name']}\t{org['created_at'].isoformat()}")


@orgs.command("rotate-key")
@org_and_args()
@click.option(
    "--overlap-seconds",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="How long the old key keeps working (0: it stops now).",
)
def orgs_rotate_key(org_slug: str, overlap_seconds: int) -> None:
    """Issue a new API key for an org and print it once."""
    try:
        rotated = cli_services().orgs.rotate_key(org_slug, overlap_seconds)
    except PipelineOpsError as exc:
        fail(str(exc))
    expires = rotated["previous_key_expires_at"]
    click.echo(f"org_slug: {org_slug}")
    click.echo(f"api_key: {rotated['api_key']}")
    click.echo(f"previous key valid until: {expires.isoformat() if expires else 'revoked now'}")
    click.echo("Store the key now: it is not shown again.", err=True)


@orgs.command("revoke-key")
@org_and_args()
@click.option("--previous-only", is_flag=True, help="Only end the overlap window of the old key.")
def orgs_revoke_key(org_slug: str, previous_only: bool) -> None:
    """Revoke an org's API key(s); `orgs rotate-key` issues a new one."""
    try:
        cli_services().orgs.revoke_key(org_slug, previous_only)
    except PipelineOpsError as exc:
        fail(str(exc))
    what = "previous key" if previous_only else "all keys"
    click.echo(f"revoked {what} of {org_slug}")


@orgs.command("set-limits")
@org_and_args()
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
    plans = org_services(org_slug).plans
    try:
        plan = plans.set_limits(
            org_slug, daily=daily, monthly=monthly, concurrent=concurrent, status=status
        )
    except PipelineOpsError as exc:
        fail(str(exc))
    for key, value in plan.as_dict().items():
        click.echo(f"{key}: {value}")
