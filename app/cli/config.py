"""`pipeline-ops config show`: the settings this process would run with, and where each
came from, with secrets masked."""

from __future__ import annotations

import json
import os
from dataclasses import fields
from pathlib import Path

import click

from app.cli.support import fail
from pipeline.observability.redact import MASK, display_url
from pipeline.settings import ENV_VARS, SECRET_FIELDS, URL_FIELDS, Settings


def shown(name: str, value: object) -> object:
    """A setting as it may be printed: secrets masked, passwords in URLs masked."""
    if value is None:
        return None
    if name in SECRET_FIELDS:
        return MASK
    if name in URL_FIELDS:
        return display_url(str(value))
    if isinstance(value, Path):
        return str(value)
    return value


def effective_settings(environ: dict[str, str]) -> list[dict[str, object]]:
    settings = Settings.from_env(environ)
    rows = []
    for f in fields(settings):
        variable = ENV_VARS.get(f.name)
        if variable is None:
            continue
        source = "env" if environ.get(variable, "") != "" else "default"
        rows.append(
            {
                "setting": f.name,
                "variable": variable,
                "value": shown(f.name, getattr(settings, f.name)),
                "source": source,
            }
        )
    return rows


@click.group()
def config() -> None:
    """This process's configuration."""


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="One JSON array of settings.")
def config_show(as_json: bool) -> None:
    """Print the effective settings, secrets masked, and where each came from (env, default)."""
    try:
        rows = effective_settings(dict(os.environ))
    except ValueError as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    width = max(len(str(r["variable"])) for r in rows)
    for row in rows:
        value = "-" if row["value"] is None else row["value"]
        click.echo(f"{row['variable']:<{width}}  {value}  ({row['source']})")
