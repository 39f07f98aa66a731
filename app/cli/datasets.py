"""`pipeline-ops bootstrap` and `bootstrap-sync`: the metadata DB and each org's dataset."""

from __future__ import annotations

import click

from app.cli.support import fail
from pipeline.bootstrap import Services, cli_services
from pipeline.settings import Settings


def _org_datasets(svc: Services, org_slug: str | None) -> list[str]:
    store, settings = svc.store, svc.settings
    if org_slug is not None:
        if store.get_org(org_slug) is None:
            fail(f"org {org_slug!r} not found")
        return [settings.org_dataset(org_slug)]
    return [settings.org_dataset(o["org_slug"]) for o in store.list_orgs()]


@click.command()
@click.option("--org", "org_slug", help="Only this org (default: every org).")
def bootstrap(org_slug: str | None) -> None:
    """Create or migrate the metadata DB, and each org's dataset, tables and procedures."""
    from warehouse.base import TableRef
    from warehouse.schemas import TABLE_SCHEMAS, with_lineage

    settings = Settings.from_env()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    svc = cli_services(settings)
    click.echo(f"metadata database: migrated ({settings.database_url.split('://', 1)[0]})")
    warehouse = svc.warehouse()
    for dataset in _org_datasets(svc, org_slug):
        warehouse.ensure_dataset(dataset)
        for name, schema in TABLE_SCHEMAS.items():
            warehouse.ensure_table(TableRef(dataset, name), with_lineage(schema))
        procedures = warehouse.bootstrap_procedures(dataset)
        click.echo(f"{dataset}: {len(TABLE_SCHEMAS)} tables, procedures: {', '.join(procedures)}")


@click.command("bootstrap-sync")
@click.option("--org", "org_slug", help="Only this org (default: every org).")
def bootstrap_sync(org_slug: str | None) -> None:
    """Add columns that known table schemas define to existing tables.

    Never drops or retypes a column: a column whose type differs is reported and left as
    it is (exit status 1), for a migration by hand.
    """
    from warehouse.base import TableRef
    from warehouse.schemas import (
        FOCUS_TABLE_SCHEMAS,
        TABLE_SCHEMAS,
        retype_conflicts,
        with_lineage,
    )

    svc = cli_services()
    warehouse = svc.warehouse()
    changed = refused = 0
    # The FOCUS table is sp_convert_to_focus's to create, but an existing one gets the
    # extension columns added since (x_price_source, ...) here, like any other table.
    known = {**TABLE_SCHEMAS, **FOCUS_TABLE_SCHEMAS}
    for dataset in _org_datasets(svc, org_slug):
        for name, schema in known.items():
            ref = TableRef(dataset, name)
            have = warehouse.table_schema(ref)
            if have is None:
                continue
            added = warehouse.add_missing_columns(ref, with_lineage(schema))
            if added:
                changed += 1
                click.echo(f"{ref}: added {', '.join(added)}")
            for conflict in retype_conflicts(have, with_lineage(schema)):
                refused += 1
                click.echo(f"{ref}: not retyped: {conflict}")
    click.echo(f"{changed} table(s) changed")
    if refused:
        fail(f"{refused} column(s) differ in type; bootstrap-sync never retypes or drops")
