"""`pipeline-ops subscriptions add|list|remove`: an org's SaaS subscriptions, amortized by
the subscription/costs/subscription_cost pipeline."""

from __future__ import annotations

import click

from app.cli.output import echo_json, wants_json
from app.cli.support import EXIT_PROBLEMS, fail, org_services, parse_day
from pipeline.bootstrap import cli_services
from pipeline_ops_core.errors import PipelineOpsError


@click.group("subscriptions")
def subscriptions() -> None:
    """Manage an org's SaaS subscriptions (amortized by subscription/costs/subscription_cost)."""


@subscriptions.command("add")
@click.option("--org", "org_slug", required=True, help="Organization slug.")
@click.option("--provider", required=True, help="SaaS vendor key, e.g. openai, cursor, slack.")
@click.option("--plan", required=True, help="Plan name, e.g. 'ChatGPT Team'.")
@click.option("--seats", required=True, type=int, help="Number of seats.")
@click.option("--unit-price", required=True, help="Price per seat per billing cycle.")
@click.option(
    "--cycle",
    "billing_cycle",
    default="monthly",
    show_default=True,
    type=click.Choice(["monthly", "quarterly", "annual"]),
)
@click.option("--start-date", required=True, help="First day covered (YYYY-MM-DD).")
@click.option("--end-date", help="Last day covered, inclusive (YYYY-MM-DD); open if omitted.")
@click.option("--currency", default="USD", show_default=True, help="ISO 4217 code.")
def subscriptions_add(
    org_slug: str,
    provider: str,
    plan: str,
    seats: int,
    unit_price: str,
    billing_cycle: str,
    start_date: str,
    end_date: str | None,
    currency: str,
) -> None:
    """Add a subscription to an org and print its id."""
    service = org_services(org_slug).subscriptions
    start = parse_day(start_date, "--start-date", EXIT_PROBLEMS)
    end = parse_day(end_date, "--end-date", EXIT_PROBLEMS) if end_date is not None else None
    values = {
        "provider": provider,
        "plan": plan,
        "seats": seats,
        "unit_price": unit_price,
        "billing_cycle": billing_cycle,
        "start_date": start,
        "end_date": end,
        "currency": currency,
    }
    try:
        sub = service.add(org_slug, values)
    except PipelineOpsError as exc:
        fail(str(exc))
    click.echo(f"subscription_id: {sub['subscription_id']}")


@subscriptions.command("list")
@click.option("--org", "org_slug", required=True, help="Organization slug.")
def subscriptions_list(org_slug: str) -> None:
    """List an org's subscriptions."""
    rows = cli_services().subscriptions.list(org_slug)
    if wants_json():
        from app.admin.schemas import SubscriptionListSchema

        echo_json(SubscriptionListSchema().dump({"subscriptions": rows}))
        return
    for s in rows:
        click.echo(
            f"{s['subscription_id']}\t{s['provider']}\t{s['plan']}\t{s['seats']} seats\t"
            f"{s['unit_price']} {s['currency']}/{s['billing_cycle']}\t"
            f"{s['start_date']}..{s['end_date'] or ''}"
        )


@subscriptions.command("remove")
@click.option("--org", "org_slug", required=True, help="Organization slug.")
@click.argument("subscription_id")
def subscriptions_remove(org_slug: str, subscription_id: str) -> None:
    """Remove a subscription (its past cost rows stay until the pipeline re-runs those days)."""
    service = cli_services().subscriptions
    try:
        service.remove(org_slug, subscription_id)
    except PipelineOpsError as exc:
        fail(str(exc))
    click.echo(f"removed {subscription_id}")
