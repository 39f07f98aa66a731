"""Helpers the command modules of app/cli/ share: exit codes, errors, dates, the org check."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from datetime import date
from typing import Any, NoReturn, TypeVar

import click

from pipeline.bootstrap import Services, cli_services

F = TypeVar("F", bound=Callable[..., Any])

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


def org_and_args(*names: str, org_required: bool = True) -> Callable[[F], F]:
    """`--org ORG` then the positional `names`; the older form with ORG as the first
    positional still works, with a deprecation line on stderr.

    Replaces `@click.argument("org_slug")` (and the positionals after it): the command
    function still receives `org_slug` and each of `names` as keyword arguments.
    """
    metavar = " ".join(["[ORG]", *(n.upper() for n in names)])

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(
            *args: Any, org_option: str | None, positionals: tuple[str, ...], **kw: Any
        ) -> Any:
            values = list(positionals)
            if org_option is not None:
                org: str | None = org_option
                if len(values) != len(names):
                    fail(
                        f"expected {' '.join(n.upper() for n in names) or 'no argument'} "
                        "after the options",
                        EXIT_USAGE,
                    )
            elif len(values) == len(names) + 1:
                org = values.pop(0)
                click.echo(
                    f"deprecated: the org as a positional argument; use --org {org}", err=True
                )
            elif not org_required and len(values) == len(names):
                org = None
            else:
                fail(f"usage: {metavar} (give the org with --org ORG)", EXIT_USAGE)
            return func(*args, org_slug=org, **dict(zip(names, values, strict=True)), **kw)

        wrapper = click.argument("positionals", nargs=-1, metavar=metavar)(wrapper)
        wrapper = click.option(
            "--org",
            "org_option",
            help="Organization slug." + ("" if org_required else " (default: all)"),
        )(wrapper)
        return wrapper  # type: ignore[return-value]

    return decorate
