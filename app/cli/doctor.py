"""`pipeline-ops doctor`: is this host set up to run? One line per check, exit 1 on any
failure.

It reads and connects, and changes nothing: no migration, no key file, no DuckDB file is
created by a diagnosis.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
from sqlalchemy.exc import SQLAlchemyError

from app.cli.support import EXIT_PROBLEMS
from credentials.errors import CredentialError
from credentials.keys import KEY_FILE
from pipeline.bootstrap import Services, diagnostic_services
from pipeline.observability.redact import display_url
from pipeline.preflight import production_problems, unreachable_db
from pipeline.settings import Settings
from pipeline.storage.db import UPGRADE_HINT, revision_of
from pipeline_ops_core.errors import PipelineOpsError
from pipeline_ops_core.extras import EXTRAS, installed
from processors.providers import REGISTRY_PATH, load_registry
from processors.registry import NEEDS_EXTRA

OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclass(frozen=True)
class Check:
    status: str
    name: str
    detail: str


def _first_line(exc: BaseException) -> str:
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return text[:300]


def check_config(settings: Settings) -> Iterator[Check]:
    problems = production_problems(settings)
    for problem in problems:
        yield Check(FAIL, "config", problem)
    if not problems:
        yield Check(
            OK, "config", f"PIPELINE_OPS_ENV={settings.env}, configs {settings.configs_dir}"
        )


def check_database(settings: Settings) -> tuple[Check, bool]:
    shown = display_url(settings.database_url)
    try:
        revision = revision_of(settings.database_url)
    except SQLAlchemyError as exc:
        return Check(FAIL, "database", unreachable_db(settings, exc)), False
    if not revision.up_to_date:
        return Check(FAIL, "database", f"{shown}: {revision.describe()}: {UPGRADE_HINT}"), False
    return Check(OK, "database", f"{shown}: revision {', '.join(revision.current)}"), True


def check_redis(settings: Settings) -> Check:
    import redis

    shown = display_url(settings.redis_url)
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        return Check(
            FAIL,
            "redis",
            f"cannot reach {shown}: {_first_line(exc)} (runs can't be queued; quota falls back "
            "to the SQL ledger)",
        )
    finally:
        client.close()
    return Check(OK, "redis", shown)


def check_warehouse(settings: Settings, svc: Services) -> Check:
    url = settings.warehouse_url
    if url.startswith("duckdb:"):
        path = Path("/" + url.split(":", 1)[1].lstrip("/").split("?", 1)[0])
        if not path.exists():
            # Opening it would create it: a diagnosis creates nothing.
            return Check(OK, "warehouse", f"DuckDB {path} (not created yet: bootstrap does)")
    try:
        svc.warehouse().ping()
    except Exception as exc:  # any failure to reach it is the finding
        return Check(FAIL, "warehouse", f"{display_url(url)}: {_first_line(exc)}")
    return Check(OK, "warehouse", display_url(url))


def check_master_key(settings: Settings, svc: Services, db_ok: bool) -> Check:
    if settings.master_key:
        source = "PIPELINE_OPS_MASTER_KEY"
    elif (settings.var_dir / KEY_FILE).exists():
        source = str(settings.var_dir / KEY_FILE)
    else:
        return Check(
            WARN,
            "master key",
            f"none: no PIPELINE_OPS_MASTER_KEY and no {settings.var_dir / KEY_FILE} yet (one is "
            "made on first use, for this host only; set PIPELINE_OPS_MASTER_KEY on every host)",
        )
    try:
        key_id = svc.keys.current_key_id()
    except CredentialError as exc:
        return Check(FAIL, "master key", f"{source}: {_first_line(exc)}")
    if not db_ok:
        return Check(WARN, "master key", f"{source}: key id {key_id} (vault not checked: no DB)")
    try:
        checked, failed = svc.credentials.check_keys()
    except SQLAlchemyError as exc:
        return Check(FAIL, "master key", f"cannot read the vault: {_first_line(exc)}")
    if failed:
        return Check(
            FAIL,
            "master key",
            f"{source} (key id {key_id}) does not open stored credentials: {failed[0]}",
        )
    return Check(
        OK, "master key", f"{source}: key id {key_id}; opens the {checked} key id(s) in the vault"
    )


def check_providers() -> Check:
    try:
        registry = load_registry()
    except PipelineOpsError as exc:
        return Check(FAIL, "providers", f"{REGISTRY_PATH}: {_first_line(exc)}")
    return Check(OK, "providers", f"{len(registry)} providers in {REGISTRY_PATH}")


def _extras_in_use(svc: Services) -> dict[str, list[str]]:
    """extra -> the pipelines of the configs directory that need it."""
    used: dict[str, list[str]] = {}
    for key in svc.catalog.keys():  # noqa: SIM118 - a catalog, not a dict
        try:
            spec = svc.catalog.load(*key)
        except PipelineOpsError:
            continue  # `pipeline-ops validate` reports those
        for step in spec.steps:
            extra = NEEDS_EXTRA.get(step.ps_type)
            if extra is not None:
                used.setdefault(extra, []).append("/".join(key))
    return used


def check_extras(settings: Settings, svc: Services) -> Iterator[Check]:
    used = _extras_in_use(svc)
    required = {"bigquery": settings.warehouse_url.startswith("bigquery:")}
    required["supabase"] = bool(settings.supabase_url)
    for extra in EXTRAS:
        hint = f"pip install 'pipeline-ops[{extra}]'"
        if installed(extra):
            yield Check(OK, f"extra {extra}", "installed")
        elif required.get(extra):
            yield Check(FAIL, f"extra {extra}", f"not installed, and the settings use it: {hint}")
        elif extra in used:
            pipelines = sorted(set(used[extra]))
            yield Check(
                WARN,
                f"extra {extra}",
                f"not installed: {len(pipelines)} pipeline(s) can't run "
                f"({', '.join(pipelines[:3])}{', …' if len(pipelines) > 3 else ''}): {hint}",
            )
        else:
            yield Check(OK, f"extra {extra}", "not installed (no pipeline here needs it)")


def diagnose(settings: Settings) -> list[Check]:
    checks = list(check_config(settings))
    database, db_ok = check_database(settings)
    checks.append(database)
    checks.append(check_redis(settings))
    svc = diagnostic_services(settings)
    checks.append(check_warehouse(settings, svc))
    checks.append(check_master_key(settings, svc, db_ok))
    checks.append(check_providers())
    checks.extend(check_extras(settings, svc))
    return checks


@click.command()
def doctor() -> None:
    """Check this host's setup: config, metadata DB and its revision, Redis, the warehouse,
    the master key (it opens the vault's keys), the providers registry and optional SDKs.
    One line per check; exit 1 if any failed."""
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        click.echo(f"{FAIL:<4}  config: {exc}")
        sys.exit(EXIT_PROBLEMS)
    checks = diagnose(settings)
    for check in checks:
        click.echo(f"{check.status:<4}  {check.name}: {check.detail}")
    failed = sum(1 for c in checks if c.status == FAIL)
    if failed:
        click.echo(f"{failed} check(s) failed", err=True)
        sys.exit(EXIT_PROBLEMS)
