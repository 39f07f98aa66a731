"""Helpers shared by app/cli.py and the command modules it registers. Kept apart from
app/cli.py so they import without a cycle."""

from __future__ import annotations

import sys
from datetime import date
from typing import NoReturn

import click

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


def when(value: object) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else "-"
