"""`pipeline-ops prices check`: the models seen in GenAI usage that have no price."""

from __future__ import annotations

import click

from app.cli.datasets import _org_datasets
from app.cli.support import fail
from pipeline.bootstrap import cli_services


@click.group()
def prices() -> None:
    """GenAI price data (genai-prices)."""


@prices.command("check")
@click.option("--org", "org_slug", help="Only this org (default: every org).")
def check(org_slug: str | None) -> None:
    """List the models in usage (genai_payg_usage_raw) the price data has no price for,
    with row counts and dates; exit 1 if there are any."""
    from processors.genai import pricing
    from warehouse.base import TableRef

    source = pricing.refresh_prices()
    svc = cli_services()
    warehouse = svc.warehouse()
    click.echo(f"price data: {source}")
    missing = 0
    for dataset in _org_datasets(svc, org_slug):
        ref = TableRef(dataset, "genai_payg_usage_raw")
        if warehouse.table_schema(ref) is None:
            continue
        seen = warehouse.query(
            f"SELECT provider, model, COUNT(*) AS n, MIN(usage_date) AS first_day,"
            f" MAX(usage_date) AS last_day FROM `{ref}` GROUP BY provider, model"
            " ORDER BY provider, model"
        ).to_pylist()
        for row in seen:
            if pricing.is_known(row["provider"], row["model"]):
                continue
            missing += 1
            click.echo(
                f"{dataset}: {row['provider']}/{row['model'] or '(no model)'}: {row['n']} usage"
                f" row(s), {row['first_day']}..{row['last_day']}"
            )
    if missing:
        fail(
            f"{missing} model(s) without a price: add them to the org's price overrides"
            " (configs/pricing/<org>.csv) or update the price data (PIPELINE_OPS_PRICES_UPDATE=1)"
        )
    click.echo("every model in usage has a price")
