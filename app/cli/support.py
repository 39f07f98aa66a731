"""Helpers the command modules of app/cli/ share: exit codes, errors, dates, the org check."""

from __future__ import annotations

import sys
from datetime import date
from typing import NoReturn

import click

from pipeline.bootstrap import Services, cli_services

EXIT_PROBLEMS = 1
EXIT_USAGE = 2


def fail(message: str, code: int = EXIT_PROBLEMS) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def parse_day(value: str, name: str, code: int = EXIT_USAGE) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{name} must be a date as YYYY-MM-DD, got {value!r}", code)


def org_services(org_slug: str) -> Services:
    """The CLI's services, once `org_slug` is known to exist (else exit 1)."""
    svc = cli_services()
    if svc.store.get_org(org_slug) is None:
        fail(f"org {org_slug!r} not found")
    return svc


def when(value: object) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else "-"
