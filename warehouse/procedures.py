"""Stored procedures kept as files of plain GoogleSQL statements.

A file `warehouse/sql/<name>.sql` starts with a header line

    -- procedure: <name>(<param> <TYPE>, ...)

followed by statements separated by `;`. Statements reference parameters as `@param` and
the org dataset as the placeholder `{dataset}` inside backquotes. A line
`-- include: <name>` is replaced by the text of `warehouse/sql/include/<name>.sql`, so the
FOCUS table's DDL and column list are written once for every procedure that fills it.
BigQuery scripting
(`CREATE PROCEDURE ... BEGIN ... END`) does not transpile, so each backend decides how to
run the list: DuckDB transpiles and runs it statement by statement in one transaction,
BigQuery can wrap it in `CREATE OR REPLACE PROCEDURE`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.tokens import Token, TokenType

from pipeline_ops_core.errors import TerminalError
from warehouse.base import check_identifier

SQL_DIR = Path(__file__).with_name("sql")
DATASET_PLACEHOLDER = "{dataset}"
PARAM_TYPES = ("STRING", "DATE", "INT64", "FLOAT64", "NUMERIC", "TIMESTAMP", "BOOL")

INCLUDE_DIR = SQL_DIR / "include"

_HEADER_RE = re.compile(r"^--\s*procedure:\s*([A-Za-z0-9_]+)\s*\((.*)\)\s*$")
_INCLUDE_RE = re.compile(r"^[ \t]*--[ \t]*include:[ \t]*(\S+)[ \t]*$", re.MULTILINE)


@dataclass(frozen=True)
class Procedure:
    name: str
    params: list[tuple[str, str]]
    statements: list[str]

    def render(self, dataset: str) -> list[str]:
        """The statements with `{dataset}` replaced by a checked identifier.

        Only the dataset name is ever substituted into the text; values always travel as
        query parameters.
        """
        ds = check_identifier(dataset, "dataset name")
        # str.replace, not str.format: SQL may legitimately contain other braces.
        return [s.replace(DATASET_PLACEHOLDER, ds) for s in self.statements]


def list_procedures(sql_dir: Path = SQL_DIR) -> list[str]:
    return sorted(p.stem for p in sql_dir.glob("*.sql"))


def load_procedure(name: str, sql_dir: Path = SQL_DIR) -> Procedure:
    check_identifier(name, "procedure name")
    path = sql_dir / f"{name}.sql"
    if not path.is_file():
        known = ", ".join(list_procedures(sql_dir)) or "none"
        raise TerminalError(f"unknown procedure {name!r} (known: {known})")
    text = expand_includes(path.read_text(encoding="utf-8"), sql_dir / "include")
    return parse_procedure(text, expected_name=name)


def expand_includes(text: str, include_dir: Path = INCLUDE_DIR) -> str:
    """Replace each `-- include: <name>` line with include/<name>.sql (one level, no nesting)."""

    def included(match: re.Match[str]) -> str:
        name = check_identifier(match.group(1), "include name")
        path = include_dir / f"{name}.sql"
        if not path.is_file():
            raise TerminalError(f"unknown SQL include {name!r} (no {path.name} in {include_dir})")
        return path.read_text(encoding="utf-8").strip()

    return _INCLUDE_RE.sub(included, text)


def parse_procedure(text: str, expected_name: str | None = None) -> Procedure:
    header, _, body = text.partition("\n")
    match = _HEADER_RE.match(header.strip())
    if not match:
        raise TerminalError(
            "procedure file must start with '-- procedure: <name>(<param> <TYPE>, ...)', "
            f"got {header.strip()[:80]!r}"
        )
    name = check_identifier(match.group(1), "procedure name")
    if expected_name is not None and name != expected_name:
        raise TerminalError(f"procedure file {expected_name}.sql declares {name!r}")
    params = _parse_params(name, match.group(2))
    statements = split_statements(body)
    if not statements:
        raise TerminalError(f"procedure {name!r} has no statements")
    declared = {p for p, _ in params}
    for i, stmt in enumerate(statements, 1):
        undeclared = referenced_params(stmt) - declared
        if undeclared:
            raise TerminalError(
                f"procedure {name!r} statement {i} uses undeclared parameter(s): "
                + ", ".join(sorted(undeclared))
            )
    return Procedure(name=name, params=params, statements=statements)


def _parse_params(proc: str, text: str) -> list[tuple[str, str]]:
    params: list[tuple[str, str]] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        pieces = part.split()
        if len(pieces) != 2:
            raise TerminalError(f"procedure {proc!r}: bad parameter declaration {part!r}")
        pname = check_identifier(pieces[0], "parameter name")
        ptype = pieces[1].upper()
        if ptype not in PARAM_TYPES:
            raise TerminalError(
                f"procedure {proc!r}: parameter {pname!r} has unsupported type {pieces[1]!r} "
                f"(allowed: {', '.join(PARAM_TYPES)})"
            )
        if any(pname == seen for seen, _ in params):
            raise TerminalError(f"procedure {proc!r}: parameter {pname!r} declared twice")
        params.append((pname, ptype))
    return params


def split_statements(sql: str) -> list[str]:
    """Split on top-level `;` using the BigQuery tokenizer, keeping the original text.

    Tokenizing (rather than `str.split`) keeps semicolons inside strings and comments intact.
    """
    pieces: list[str] = []
    start = 0
    for tok in tokenize(sql):
        if tok.token_type == TokenType.SEMICOLON:
            pieces.append(sql[start : tok.start])
            start = tok.end + 1
    pieces.append(sql[start:])
    return [p.strip() for p in pieces if _has_code(p)]


def tokenize(sql: str) -> list[Token]:
    try:
        return sqlglot.tokenize(sql, read="bigquery")
    except SqlglotError as exc:
        raise TerminalError(f"cannot tokenize SQL: {exc}") from None


def _has_code(piece: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in piece.splitlines())


def referenced_params(sql: str) -> set[str]:
    """Names of the `@param` query parameters a GoogleSQL text references."""
    try:
        trees = sqlglot.parse(sql, read="bigquery")
    except SqlglotError as exc:
        raise TerminalError(f"cannot parse GoogleSQL: {_first_line(exc)}") from None
    return {p.name for tree in trees if tree is not None for p in tree.find_all(exp.Parameter)}


def coerce_args(proc: Procedure, args: dict[str, object]) -> dict[str, object]:
    """Convert arguments to the Python types of the declared parameter types.

    Unknown and missing arguments are rejected by name so a bad call writes nothing.
    """
    declared = dict(proc.params)
    unknown = sorted(set(args) - set(declared))
    if unknown:
        raise TerminalError(f"procedure {proc.name!r}: unknown argument(s): {', '.join(unknown)}")
    missing = [p for p in declared if p not in args]
    if missing:
        raise TerminalError(f"procedure {proc.name!r}: missing argument(s): {', '.join(missing)}")
    out: dict[str, object] = {}
    for pname, ptype in proc.params:
        value = args[pname]
        try:
            out[pname] = None if value is None else _COERCE[ptype](value)
        except (TypeError, ValueError, InvalidOperation):
            raise TerminalError(
                f"procedure {proc.name!r}: argument {pname!r} must be {ptype}, got {value!r}"
            ) from None
    return out


def _to_string(v: object) -> str:
    if not isinstance(v, str):
        raise TypeError
    return v


def _to_date(v: object) -> date:
    if isinstance(v, datetime):  # a datetime is a date too; refuse to drop its time silently
        raise TypeError
    if isinstance(v, date):
        return v
    if isinstance(v, str):
        return date.fromisoformat(v)
    raise TypeError


def _to_int(v: object) -> int:
    if isinstance(v, bool):
        raise TypeError
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        return int(v.strip())
    raise TypeError


def _to_float(v: object) -> float:
    if isinstance(v, bool):
        raise TypeError
    if isinstance(v, (int, float, Decimal)):
        return float(v)
    if isinstance(v, str):
        return float(v)
    raise TypeError


def _to_numeric(v: object) -> Decimal:
    if isinstance(v, bool):
        raise TypeError
    if isinstance(v, Decimal):
        return v
    if isinstance(v, (int, str)):
        return Decimal(v)
    if isinstance(v, float):
        return Decimal(str(v))  # via str so 0.1 stays 0.1, not its binary expansion
    raise TypeError


def _to_timestamp(v: object) -> datetime:
    if isinstance(v, str):
        v = datetime.fromisoformat(v)
    if not isinstance(v, datetime):
        raise TypeError
    # BigQuery TIMESTAMP is an instant; a naive value is read as UTC, as BigQuery does.
    return v if v.tzinfo else v.replace(tzinfo=UTC)


def _to_bool(v: object) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lower() in ("true", "false"):
        return v.strip().lower() == "true"
    raise TypeError


_COERCE = {
    "STRING": _to_string,
    "DATE": _to_date,
    "INT64": _to_int,
    "FLOAT64": _to_float,
    "NUMERIC": _to_numeric,
    "TIMESTAMP": _to_timestamp,
    "BOOL": _to_bool,
}


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
