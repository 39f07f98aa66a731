"""The warehouse as a step sees it (`ctx.warehouse`): the platform's identity, one org's dataset.

The platform's warehouse identity can read every org's dataset. A step works for one org,
so its handle is limited to that org's dataset: every table a query names (parsed with
sqlglot, GoogleSQL) must be a table of the dataset, and every other call must name it.
A table outside the dataset and a table that does not exist get the same message, so the
handle can't be used to learn what exists elsewhere. Reading an org's data in its own
cloud (a billing export) is done with the org's own credential, never through this.

Writes go through the lineage writer, which the engine builds on the unscoped backend.
"""

from __future__ import annotations

import pyarrow as pa
import sqlglot
from sqlglot import exp

from pipeline_ops_core.errors import TerminalError
from warehouse.base import (
    DEFAULT_CLUSTER,
    PARTITION_FIELD,
    JobContext,
    LineageKey,
    TableRef,
    Warehouse,
    WriteMode,
    WriteResult,
)


class OutOfScope(TerminalError):
    code = "not_found"


class OrgScopedWarehouse:
    def __init__(self, inner: Warehouse, dataset: str) -> None:
        self.inner = inner
        self.dataset = dataset

    def _missing(self, name: str) -> OutOfScope:
        return OutOfScope(f"table {name} not found in dataset {self.dataset}")

    def _own(self, dataset: str, name: str) -> None:
        if dataset != self.dataset:
            raise self._missing(f"{dataset}.{name}")

    def tables_of(self, sql: str) -> list[TableRef]:
        """The dataset tables `sql` reads; OutOfScope for anything else it names."""
        try:
            statements = [s for s in sqlglot.parse(sql, read="bigquery") if s is not None]
        except sqlglot.errors.SqlglotError:
            raise TerminalError("the query could not be parsed") from None
        found: list[TableRef] = []
        for statement in statements:
            if not isinstance(statement, exp.Query):
                raise TerminalError("only SELECT queries may run through a step's warehouse")
            ctes = {cte.alias_or_name for cte in statement.find_all(exp.CTE)}
            for table in statement.find_all(exp.Table):
                if not isinstance(table.this, exp.Identifier):
                    # A table function (read_csv, EXTERNAL_QUERY, ...) reads outside any dataset.
                    raise self._missing(table.sql(dialect="bigquery"))
                if not table.db and not table.catalog and table.name in ctes:
                    continue
                if table.catalog or table.db != self.dataset:
                    raise self._missing(".".join(p for p in (table.db, table.name) if p))
                found.append(TableRef(self.dataset, table.name))
        return found

    def query(self, sql: str, params: dict[str, object] | None = None) -> pa.Table:
        for ref in self.tables_of(sql):
            if self.inner.table_schema(ref) is None:
                raise self._missing(str(ref))
        return self.inner.query(sql, params)

    def table_schema(self, table: TableRef) -> pa.Schema | None:
        self._own(table.dataset, table.table)
        return self.inner.table_schema(table)

    def call_procedure(self, dataset: str, name: str, args: dict[str, object]) -> None:
        self._own(dataset, name)
        self.inner.call_procedure(dataset, name, args)

    def ensure_dataset(self, dataset: str) -> None:
        self._own(dataset, "")
        self.inner.ensure_dataset(dataset)

    def ensure_table(
        self,
        table: TableRef,
        schema: pa.Schema,
        partition_field: str = PARTITION_FIELD,
        cluster: tuple[str, ...] = DEFAULT_CLUSTER,
    ) -> None:
        self._own(table.dataset, table.table)
        self.inner.ensure_table(table, schema, partition_field, cluster)

    def write_partition(
        self,
        table: TableRef,
        rows: pa.Table,
        key: LineageKey,
        mode: WriteMode = "replace",
        merge_keys: tuple[str, ...] = (),
        *,
        job_context: JobContext | None = None,
    ) -> WriteResult:
        self._own(table.dataset, table.table)
        return self.inner.write_partition(
            table, rows, key, mode, merge_keys, job_context=job_context
        )

    def write_stream(
        self,
        table: TableRef,
        rows: pa.RecordBatchReader,
        key: LineageKey,
        *,
        job_context: JobContext | None = None,
    ) -> WriteResult:
        self._own(table.dataset, table.table)
        return self.inner.write_stream(table, rows, key, job_context=job_context)

    def add_missing_columns(self, table: TableRef, schema: pa.Schema) -> list[str]:
        self._own(table.dataset, table.table)
        return self.inner.add_missing_columns(table, schema)

    def bootstrap_procedures(self, dataset: str) -> list[str]:
        self._own(dataset, "")
        return self.inner.bootstrap_procedures(dataset)

    def ping(self) -> None:
        self.inner.ping()
