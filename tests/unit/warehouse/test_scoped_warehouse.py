"""ctx.warehouse is one org's dataset: other datasets read exactly like missing tables."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from pipeline_ops_core.errors import TerminalError
from warehouse.base import TableRef
from warehouse.duckdb import DuckDBWarehouse
from warehouse.scoped import OrgScopedWarehouse, OutOfScope


@pytest.fixture
def wh(tmp_path: Path) -> DuckDBWarehouse:
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    for dataset in ("a_dev", "b_dev"):
        warehouse.ensure_dataset(dataset)
        schema = pa.schema(
            [("x_org_slug", pa.string()), ("x_pipeline_id", pa.string()), ("v", pa.int64())]
        )
        warehouse.ensure_table(TableRef(dataset, "rows"), schema, partition_field="v")
    return warehouse


def test_the_orgs_own_tables_read_normally(wh: DuckDBWarehouse) -> None:
    scoped = OrgScopedWarehouse(wh, "a_dev")
    assert scoped.query("SELECT COUNT(*) AS n FROM `a_dev.rows`").to_pylist() == [{"n": 0}]
    assert scoped.query("WITH t AS (SELECT 1 AS v) SELECT v FROM t").to_pylist() == [{"v": 1}]
    assert scoped.table_schema(TableRef("a_dev", "rows")) is not None


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM `b_dev.rows`",
        "SELECT * FROM `a_dev.rows` JOIN `b_dev.rows` USING (v)",
        "SELECT * FROM `a_dev.rows` WHERE v IN (SELECT v FROM `b_dev.rows`)",
        "SELECT * FROM rows",
        "SELECT * FROM `local.a_dev.rows`",
        "SELECT * FROM read_csv('/etc/passwd')",
    ],
)
def test_other_datasets_are_refused_like_missing_tables(wh: DuckDBWarehouse, sql: str) -> None:
    scoped = OrgScopedWarehouse(wh, "a_dev")
    with pytest.raises(OutOfScope, match=r"^table .* not found in dataset a_dev$"):
        scoped.query(sql)


def test_missing_and_foreign_tables_give_the_same_message(wh: DuckDBWarehouse) -> None:
    scoped = OrgScopedWarehouse(wh, "a_dev")
    with pytest.raises(OutOfScope) as missing:
        scoped.query("SELECT * FROM `a_dev.nope`")
    with pytest.raises(OutOfScope) as foreign:
        scoped.query("SELECT * FROM `b_dev.rows`")
    shape = (
        str(missing.value).replace("a_dev.nope", "T"),
        str(foreign.value).replace("b_dev.rows", "T"),
    )
    assert shape[0] == shape[1]
    with pytest.raises(OutOfScope):
        scoped.table_schema(TableRef("b_dev", "rows"))
    with pytest.raises(OutOfScope):
        scoped.call_procedure("b_dev", "sp_x", {})


def test_only_select_statements_run(wh: DuckDBWarehouse) -> None:
    with pytest.raises(TerminalError, match="only SELECT"):
        OrgScopedWarehouse(wh, "a_dev").query("DELETE FROM `a_dev.rows` WHERE TRUE")
