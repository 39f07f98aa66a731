"""The global `--output table|json` of `pipeline-ops`, and how read commands print.

JSON output has stable keys (sorted) and ISO 8601 timestamps; where a command has an API
twin it prints the API's shape (app/api/presenters.py), so a script can switch between
the two.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import click

FORMATS = ("table", "json")


def output_format(ctx: click.Context | None = None) -> str:
    """`json` or `table`, from the root command's --output (or a command's --json)."""
    ctx = ctx or click.get_current_context()
    root = ctx.find_root()
    return str((root.obj or {}).get("output") or "table")


def wants_json(as_json: bool = False) -> bool:
    """A command's deprecated `--json` flag, or the global `--output json`."""
    return as_json or output_format() == "json"


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def to_json(data: Any) -> str:
    return json.dumps(data, default=_default, indent=2, sort_keys=True)


def echo_json(data: Any) -> None:
    click.echo(to_json(data))


def iso(value: Any) -> str:
    if value is None:
        return "-"
    return value.isoformat() if isinstance(value, datetime | date) else str(value)


def echo_table(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    empty: str = "(none)",
    formats: dict[str, Callable[[Any], str]] | None = None,
) -> None:
    """Rows as aligned columns with a header line."""
    if not rows:
        click.echo(empty)
        return
    formats = formats or {}
    cells = [[formats.get(c, iso)(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)))
    for r in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def deprecated(message: str) -> None:
    """One line on stderr for an alias that still works but will go."""
    click.echo(f"deprecated: {message}", err=True)
