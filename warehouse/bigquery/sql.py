"""GoogleSQL text the BigQuery backend runs: write scripts, procedures and CALL.

Values always travel as query parameters. A script declares one variable per value,
`DECLARE v TYPE DEFAULT @v;`, and its body uses the bare variable, the same way a
procedure body uses its parameters. That keeps the body identical on the emulator, which
drops query parameters in multi-statement queries and CALL (emulator gap 3): there, and
only there (`inline=True`), the DECLAREs take literals built by `sql_literal` instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlglot
from google.cloud.bigquery import ScalarQueryParameter
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.tokens import TokenType

from pipeline_ops_core.errors import TerminalError
from warehouse.base import LineageKey, TableRef, check_identifier
from warehouse.bigquery.types import sql_literal
from warehouse.procedures import DATASET_PLACEHOLDER, Procedure, referenced_params, tokenize

_PROJECT_RE = re.compile(r"^(?:[a-z][a-z0-9.-]*:)?[a-z][a-z0-9-]{3,61}[a-z0-9]$")
_DML = (exp.Insert, exp.Delete, exp.Update, exp.Merge, exp.TruncateTable)


@dataclass(frozen=True)
class Script:
    sql: str
    params: list[ScalarQueryParameter] = field(default_factory=list)


@dataclass(frozen=True)
class Variable:
    name: str
    type: str
    value: object


def check_project(project: str) -> str:
    if not isinstance(project, str) or not _PROJECT_RE.match(project):
        raise TerminalError(f"invalid BigQuery project id {project!r}")
    return project


def table_path(project: str, table: TableRef) -> str:
    """`project.dataset.table` in backquotes; every part is checked, so nothing can escape."""
    return f"`{check_project(project)}.{table.dataset}.{table.table}`"


def _col(name: str) -> str:
    return f"`{check_identifier(name, 'column name')}`"


def declare(variables: Sequence[Variable], inline: bool) -> Script:
    lines, params = [], []
    for v in variables:
        check_identifier(v.name, "variable name")
        if inline:
            lines.append(f"DECLARE {v.name} {v.type} DEFAULT {sql_literal(v.value, v.type)};")
        else:
            lines.append(f"DECLARE {v.name} {v.type} DEFAULT @{v.name};")
            params.append(ScalarQueryParameter(v.name, v.type, v.value))
    return Script("\n".join(lines), params)


def _counted(variables: list[Variable], body: list[str], inline: bool) -> Script:
    head = declare(variables, inline)
    sql = "\n".join(
        [
            head.sql,
            "DECLARE rows_deleted INT64 DEFAULT 0;",
            "DECLARE rows_written INT64 DEFAULT 0;",
            "BEGIN TRANSACTION;",
            *body,
            "COMMIT TRANSACTION;",
            "SELECT rows_deleted, rows_written;",
        ]
    )
    return Script(sql, head.params)


def replace_script(
    project: str,
    target: TableRef,
    staging: TableRef,
    columns: Sequence[str],
    key: LineageKey,
    inline: bool = False,
) -> Script:
    """DELETE the key's slice and INSERT the staged rows, in one transaction.

    A failure anywhere rolls the whole transaction back: the old rows stay.
    """
    t, s = table_path(project, target), table_path(project, staging)
    cols = ", ".join(_col(c) for c in columns)
    where = (
        "x_org_slug = po_org AND x_pipeline_id = po_pipeline AND x_credential_id = po_credential"
        " AND x_pipeline_run_date BETWEEN po_start_date AND po_end_date"
    )
    variables = [
        Variable("po_org", "STRING", key.org_slug),
        Variable("po_pipeline", "STRING", key.pipeline_id),
        Variable("po_credential", "STRING", key.credential_id),
        Variable("po_start_date", "DATE", key.start_date),
        Variable("po_end_date", "DATE", key.end_date),
    ]
    body = [
        f"SET rows_deleted = (SELECT COUNT(*) FROM {t} WHERE {where});",
        f"DELETE FROM {t} WHERE {where};",
        f"INSERT INTO {t} ({cols}) SELECT {cols} FROM {s};",
        f"SET rows_written = (SELECT COUNT(*) FROM {s});",
    ]
    return _counted(variables, body, inline)


def merge_script(
    project: str,
    target: TableRef,
    staging: TableRef,
    columns: Sequence[str],
    merge_keys: Sequence[str],
    org_slug: str,
    inline: bool = False,
) -> Script:
    """Upsert the staged rows by `merge_keys` within one org, with explicit column lists.

    `INSERT ROW` would be shorter but the emulator can't parse it (emulator gap 2).
    """
    t, s = table_path(project, target), table_path(project, staging)
    matches = [f"T.{_col(k)} = S.{_col(k)}" for k in merge_keys]
    on = " AND ".join(["T.x_org_slug = po_org", *matches])
    updates = ", ".join(f"{_col(c)} = S.{_col(c)}" for c in columns)
    cols = ", ".join(_col(c) for c in columns)
    values = ", ".join(f"S.{_col(c)}" for c in columns)
    body = [
        f"SET rows_deleted = (SELECT COUNT(*) FROM {t} AS T JOIN {s} AS S ON {on});",
        f"MERGE {t} AS T USING {s} AS S ON {on}",
        f"WHEN MATCHED THEN UPDATE SET {updates}",
        f"WHEN NOT MATCHED THEN INSERT ({cols}) VALUES ({values});",
        f"SET rows_written = (SELECT COUNT(*) FROM {s});",
    ]
    return _counted([Variable("po_org", "STRING", org_slug)], body, inline)


# -- procedures ----------------------------------------------------------------------------


def _param_tokens(sql: str) -> list[tuple[int, str]]:
    """(offset of the `@`, name) of each `@name` query parameter, found with the tokenizer.

    Tokens keep strings, quoted identifiers, comments and system variables (`@@row_count`)
    out; the tokenizer also accepts GoogleSQL that sqlglot's parser would not.
    """
    tokens = tokenize(sql)
    found: list[tuple[int, str]] = []
    for prev, tok, nxt in zip([None, *tokens[:-1]], tokens, [*tokens[1:], None], strict=True):
        if tok.token_type != TokenType.PARAMETER or nxt is None:
            continue
        system = prev is not None and prev.token_type == TokenType.PARAMETER
        if system and prev.end + 1 == tok.start:  # type: ignore[union-attr]
            continue  # the second `@` of a system variable
        if nxt.token_type == TokenType.VAR:
            found.append((tok.start, nxt.text))
    return found


def param_names(sql: str) -> set[str]:
    return {name for _, name in _param_tokens(sql)}


def strip_param_markers(sql: str, names: set[str]) -> str:
    """`@p` -> `p` for the declared parameter names: a procedure body uses bare names."""
    cut = {at for at, name in _param_tokens(sql) if name in names}
    out = "".join(ch for i, ch in enumerate(sql) if i not in cut)
    left = referenced_params(out) & names
    if left:
        raise TerminalError(f"could not rewrite parameter(s) {', '.join(sorted(left))}")
    return out


def _kind(sql: str) -> str:
    """`dml`, `query` (allowed in a transaction too) or `other` (DDL, scripting)."""
    try:
        tree = sqlglot.parse_one(sql, read="bigquery")
    except SqlglotError as exc:
        raise TerminalError(f"cannot parse GoogleSQL: {exc}") from None
    if isinstance(tree, _DML):
        return "dml"
    return "query" if isinstance(tree, exp.Query) else "other"


def procedure_body(proc: Procedure, project: str, dataset: str, transaction: bool) -> list[str]:
    """The statements of a procedure as BigQuery runs them.

    `{dataset}` becomes `project.dataset`, `@p` becomes `p`, and the DML (from the first
    DML statement on) runs in one transaction, as DuckDB runs the whole file. BigQuery
    allows no permanent DDL inside a transaction, so DDL may only come before the DML.
    """
    ds = check_identifier(dataset, "dataset name")
    qualified = f"{check_project(project)}.{ds}"
    names = {p for p, _ in proc.params}
    statements = [
        strip_param_markers(s.replace(DATASET_PLACEHOLDER, qualified), names)
        for s in proc.statements
    ]
    kinds = [_kind(s) for s in statements]
    if "dml" not in kinds or not transaction:
        return statements
    first = kinds.index("dml")
    for i, kind in enumerate(kinds[first:], first + 1):
        if kind == "other":
            raise TerminalError(
                f"procedure {proc.name!r} statement {i}: DDL after DML cannot run in one "
                "BigQuery transaction; move it before the first DML statement"
            )
    return [*statements[:first], "BEGIN TRANSACTION", *statements[first:], "COMMIT TRANSACTION"]


def create_procedure(proc: Procedure, project: str, dataset: str, transaction: bool) -> str:
    params = ", ".join(f"{name} {ptype}" for name, ptype in proc.params)
    body = ";\n".join(procedure_body(proc, project, dataset, transaction))
    target = f"`{check_project(project)}.{check_identifier(dataset)}.{proc.name}`"
    return f"CREATE OR REPLACE PROCEDURE {target}({params})\nBEGIN\n{body};\nEND"


def call_procedure(
    proc: Procedure, project: str, dataset: str, values: dict[str, object], inline: bool = False
) -> Script:
    target = f"`{check_project(project)}.{check_identifier(dataset)}.{proc.name}`"
    if inline:
        args = ", ".join(sql_literal(values[name], ptype) for name, ptype in proc.params)
        return Script(f"CALL {target}({args})")
    args = ", ".join(f"@{name}" for name, _ in proc.params)
    params = [ScalarQueryParameter(name, ptype, values[name]) for name, ptype in proc.params]
    return Script(f"CALL {target}({args})", params)
