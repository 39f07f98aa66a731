"""`-- include:` lines in procedure files: expanded once, checked, and equal to the schema."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot
from sqlglot.tokens import TokenType

from pipeline_ops_core.errors import InvalidIdentifierError, TerminalError
from warehouse.procedures import expand_includes, list_procedures, load_procedure
from warehouse.schemas import FOCUS_TABLE_SCHEMAS, with_lineage


def test_include_expands_in_place(tmp_path: Path) -> None:
    (tmp_path / "cols.sql").write_text("-- why\n  a,\n  b\n")
    text = "SELECT\n  -- include: cols\nFROM t"
    assert expand_includes(text, tmp_path) == "SELECT\n-- why\n  a,\n  b\nFROM t"


def test_unknown_or_unsafe_include_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TerminalError, match="unknown SQL include 'nope'"):
        expand_includes("-- include: nope", tmp_path)
    with pytest.raises(InvalidIdentifierError):
        expand_includes("-- include: ../secrets", tmp_path)


FOCUS_TABLE = "`{dataset}.cost_data_standard_1_3`"
FILLERS = [
    name
    for name in list_procedures()
    if any(f"INSERT INTO {FOCUS_TABLE}" in s for s in load_procedure(name).statements)
]


def test_the_focus_fillers_are_found() -> None:
    assert "sp_convert_to_focus" in FILLERS


@pytest.mark.parametrize("name", FILLERS)
def test_every_focus_procedure_creates_and_fills_exactly_the_table_columns(name: str) -> None:
    expected = [f.name for f in with_lineage(FOCUS_TABLE_SCHEMAS["cost_data_standard_1_3"])]
    proc = load_procedure(name)
    creates = [s for s in proc.statements if f"CREATE TABLE IF NOT EXISTS {FOCUS_TABLE}" in s]
    assert len(creates) == 1, "create the table through `-- include: focus_1_3_table`"
    inserts = [s for s in proc.statements if f"INSERT INTO {FOCUS_TABLE}" in s]
    for statement in inserts:
        listed = statement.split(f"INSERT INTO {FOCUS_TABLE} (", 1)[1].split("\n)", 1)[0]
        names = [line.strip().rstrip(",") for line in listed.splitlines()]
        assert [n for n in names if n and not n.startswith("--")] == expected


@pytest.mark.parametrize(
    ("name", "raw_table"),
    [
        ("sp_focus_aws", "aws_focus_export_raw"),
        ("sp_focus_azure", "azure_focus_export_raw"),
        ("sp_focus_oci", "oci_focus_report_raw"),
    ],
)
def test_file_export_clouds_create_their_raw_table_as_the_schema_says(
    name: str, raw_table: str
) -> None:
    from warehouse.bigquery.types import bq_type_name
    from warehouse.schemas import TABLE_SCHEMAS

    (create,) = [
        s
        for s in load_procedure(name).statements
        if f"CREATE TABLE IF NOT EXISTS `{{dataset}}.{raw_table}`" in s
    ]
    body = create.split(f"{raw_table}` (", 1)[1].rsplit(")", 1)[0]
    got = [
        line.strip().rstrip(",").replace(" NOT NULL", "").split()
        for line in body.splitlines()
        if line.strip() and not line.strip().startswith("--")
    ]
    schema = with_lineage(TABLE_SCHEMAS[raw_table])
    assert got == [[f.name, bq_type_name(f)] for f in schema]


@pytest.mark.parametrize("name", list_procedures())
def test_no_procedure_uses_case(name: str) -> None:
    """No `CASE ... END` in any procedure, includes expanded: write IF/COALESCE/IFNULL.

    BigQuery creates each file as `CREATE PROCEDURE ... BEGIN ... END`, and the emulator the
    tests run on (bqemulator 1.4.0) takes a CASE's END for the procedure's END there and
    fails with "Expected END after CASE".
    """
    for statement in load_procedure(name).statements:
        tokens = sqlglot.tokenize(statement, read="bigquery")
        assert not [t for t in tokens if t.token_type == TokenType.CASE], statement
