"""BigQuery warehouse: the production backend, with the same guarantees as DuckDB.

A write loads the rows (Parquet, a load job; never streaming inserts, whose buffer blocks
DML) into a staging table named per run, step and attempt, which expires on its own; then
one multi-statement transaction DELETEs the key's slice and INSERTs from staging (replace),
or a MERGE with explicit column lists upserts (merge). Job ids are deterministic, so a
redelivered attempt reuses what already ran (jobs.py). The staging table is dropped
after the write.

Emulator gaps (bqemulator 1.4.0) and how this module works around them, all switched on
only by an `endpoint=` URL option:
1. load jobs ignore the given job id; query job ids may repeat (see jobs.py);
2. `MERGE ... INSERT ROW` does not parse: the column list is always explicit;
3. query parameters are dropped in multi-statement queries and CALL: values become
   literals in the script's DECLAREs and the CALL's arguments (sql.declare);
4. `BEGIN TRANSACTION` inside a procedure body does not parse: the body runs without it;
5. table expiration is not stored: staging tables rely on being dropped;
6. REQUIRED (NOT NULL) columns of tables made through the tables API are not enforced;
7. `tables.update` changes a table's schema in the metadata only, and `ALTER TABLE ... ADD
   COLUMN` in the data only (one ADD per ALTER): columns are added with ALTER, as on
   BigQuery, and on the emulator the metadata is patched too;
8. `CASE ... END` inside a procedure body does not parse (its END closes the body): the
   procedure files use IF() instead (a test checks none of them uses CASE);
9. no IAM: every call is allowed (the GCP export tests put a proxy answering 403 in front).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import pyarrow as pa
from google.api_core import exceptions as gexc
from google.cloud import bigquery

from pipeline_ops_core.errors import TerminalError
from warehouse.base import (
    DEFAULT_CLUSTER,
    PARTITION_FIELD,
    JobContext,
    LineageKey,
    TableRef,
    WriteFence,
    WriteMode,
    WriteResult,
    check_identifier,
)
from warehouse.bigquery.client import (
    BigQueryConfig,
    make_client,
    service_account_credentials,
)
from warehouse.bigquery.errors import BigQueryError, bq_errors
from warehouse.bigquery.jobs import adhoc_context
from warehouse.bigquery.sql import call_procedure, check_project, create_procedure, param_names
from warehouse.bigquery.types import bq_type_name, infer_param_type
from warehouse.bigquery.write import StagedRows, StagedWrite, arrow_field, schema_fields
from warehouse.checks import check_layout, check_rows_in_key, check_stream, check_write
from warehouse.procedures import (
    SQL_DIR,
    coerce_args,
    list_procedures,
    load_procedure,
    split_statements,
)


class BigQueryWarehouse:
    def __init__(
        self, config: BigQueryConfig, credentials: Any | None = None, sql_dir: Path = SQL_DIR
    ) -> None:
        self.config = config
        self.project, self.location = config.project, config.location
        self.sql_dir = sql_dir
        self._credentials = credentials
        self._client: Any | None = None
        self.fence: WriteFence | None = None

    def fenced(self, fence: WriteFence) -> BigQueryWarehouse:
        """This warehouse for one step: `fence` is checked immediately before each change
        (and held while its job runs), so a cancelled run's step changes nothing."""
        other = copy.copy(self)
        other.fence = fence
        return other

    def _fence(self) -> AbstractContextManager[None]:
        return self.fence.hold() if self.fence is not None else nullcontext()

    @classmethod
    def from_url(cls, url: str) -> BigQueryWarehouse:
        return cls(BigQueryConfig.from_url(url))

    @property
    def client(self) -> bigquery.Client:
        if self._client is None:  # built on first use: default credentials are looked up here
            with bq_errors("client setup"):
                self._client = make_client(self.config, self._credentials)
        return self._client

    def with_credentials(
        self, info: Mapping[str, Any], project: str | None = None
    ) -> BigQueryWarehouse:
        """The same backend acting as an org's own service account (cross-project reads).

        Jobs run in `project` (default: the key's project); `query` may then read any
        project the service account can see, e.g. `customer-proj.billing.export`.
        """
        job_project = project or str(info.get("project_id") or self.project)
        return BigQueryWarehouse.for_service_account(
            info, job_project, self.location, self.config.endpoint, self.sql_dir
        )

    @classmethod
    def for_service_account(
        cls,
        info: Mapping[str, Any],
        project: str,
        location: str,
        endpoint: str | None = None,
        sql_dir: Path = SQL_DIR,
    ) -> BigQueryWarehouse:
        """A backend acting as a service account (an org's own key), jobs in `project`.

        For reading an org's data in its own projects (the billing export) with the org's
        identity rather than the platform's; `endpoint` points at an emulator.
        """
        config = BigQueryConfig(check_project(project), location, endpoint)
        return cls(config, service_account_credentials(info), sql_dir)

    def _path(self, table: TableRef) -> str:
        return f"{self.project}.{table.dataset}.{table.table}"

    # -- datasets and tables ---------------------------------------------------------------

    def ensure_dataset(self, dataset: str) -> None:
        ds = f"{self.project}.{check_identifier(dataset, 'dataset name')}"
        with bq_errors(f"ensure dataset {dataset}"):
            try:
                found = self.client.get_dataset(ds)
            except gexc.NotFound:
                wanted = bigquery.Dataset(ds)
                wanted.location = self.location
                self.client.create_dataset(wanted, exists_ok=True)
                return
        if (found.location or "").lower() != self.location.lower():
            raise TerminalError(
                f"dataset {ds} is in {found.location}, not in {self.location} as configured"
            )

    def ensure_table(
        self,
        table: TableRef,
        schema: pa.Schema,
        partition_field: str = PARTITION_FIELD,
        cluster: tuple[str, ...] = DEFAULT_CLUSTER,
    ) -> None:
        fields = schema_fields(schema)
        check_layout(table, schema, partition_field, cluster)
        if len(cluster) > 4:
            raise TerminalError(f"{table}: BigQuery clusters by at most 4 columns")
        if self.table_schema(table) is not None:
            self.add_missing_columns(table, schema)
            return
        wanted = bigquery.Table(self._path(table), schema=fields)
        if partition_field:
            wanted.time_partitioning = bigquery.TimePartitioning(
                type_=bigquery.TimePartitioningType.DAY, field=partition_field
            )
        if cluster:
            wanted.clustering_fields = list(cluster)
        # The dataset first, as DuckDB creates its schema. (Creating a table in a missing
        # dataset gets a 500 from the emulator, which the client retries for minutes.)
        self.ensure_dataset(table.dataset)
        with bq_errors(f"create table {table}"):
            self.client.create_table(wanted, exists_ok=True)

    def table_schema(self, table: TableRef) -> pa.Schema | None:
        with bq_errors(f"read schema of {table}"):
            try:
                found = self.client.get_table(self._path(table))
            except gexc.NotFound:
                return None
        return pa.schema([arrow_field(f) for f in found.schema])

    def add_missing_columns(self, table: TableRef, schema: pa.Schema) -> list[str]:
        have = self.table_schema(table)
        if have is None:
            raise TerminalError(f"table {table} does not exist")
        new = [f for f in schema if f.name not in have.names]
        if not new:
            return []
        # DDL rather than tables.update: `IF NOT EXISTS` makes a concurrent sync harmless.
        # One ALTER per column, in one script (the emulator takes one ADD per ALTER). Added
        # columns stay nullable: existing rows have no value for them.
        alters = "\n".join(
            f"ALTER TABLE `{self._path(table)}` ADD COLUMN IF NOT EXISTS "
            f"`{check_identifier(f.name, 'column name')}` {bq_type_name(f)};"
            for f in new
        )
        self._run(alters, [], f"add columns to {table}")
        if self.config.emulator:  # emulator gap 7: its ALTER leaves the table metadata as is
            with bq_errors(f"add columns to {table}"):
                found = self.client.get_table(self._path(table))
                added = schema_fields(pa.schema([f.with_nullable(True) for f in new]))
                found.schema = [*found.schema, *added]
                self.client.update_table(found, ["schema"])
        return [f.name for f in new]

    # -- writes ----------------------------------------------------------------------------

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
        check_write(table, rows, key, mode, merge_keys)
        if self.table_schema(table) is None:
            raise TerminalError(f"table {table} does not exist; call ensure_table first")
        writer = StagedWrite(self.client, self.config, table, job_context or adhoc_context())
        return writer.run(rows, key, mode, merge_keys, fence=self._fence)

    def write_stream(
        self,
        table: TableRef,
        rows: pa.RecordBatchReader,
        key: LineageKey,
        *,
        job_context: JobContext | None = None,
    ) -> WriteResult:
        check_stream(table, rows.schema, key)
        if self.table_schema(table) is None:
            raise TerminalError(f"table {table} does not exist; call ensure_table first")
        # One load job of the batches spooled to a Parquet file, then the same replace
        # transaction as write_partition.
        staged = StagedRows.of_batches(rows, lambda batch: check_rows_in_key(table, batch, key))
        writer = StagedWrite(self.client, self.config, table, job_context or adhoc_context())
        return writer.run(staged, key, "replace", (), fence=self._fence)

    # -- queries and procedures ------------------------------------------------------------

    def query(self, sql: str, params: dict[str, object] | None = None) -> pa.Table:
        statements = split_statements(sql)
        if len(statements) != 1:
            raise TerminalError(f"query must be one statement, got {len(statements)}")
        values = params or {}
        used = param_names(sql)
        missing = sorted(used - set(values))
        if missing:
            raise TerminalError(f"query: missing parameter(s): {', '.join(missing)}")
        config = bigquery.QueryJobConfig(
            query_parameters=[
                bigquery.ScalarQueryParameter(n, infer_param_type(values[n]), values[n])
                for n in sorted(used)
            ]
        )
        with bq_errors("query"):
            job = self.client.query(sql, job_config=config, location=self.location)
            with bq_errors("query", job.job_id):
                return job.result().to_arrow(create_bqstorage_client=False)

    def bootstrap_procedures(self, dataset: str) -> list[str]:
        names = list_procedures(self.sql_dir)
        for name in names:
            self._create_procedure(dataset, name)
        return names

    def _create_procedure(self, dataset: str, name: str) -> None:
        proc = load_procedure(name, self.sql_dir)
        # Emulator gap 4: no BEGIN TRANSACTION inside a procedure body there.
        ddl = create_procedure(proc, self.project, dataset, transaction=not self.config.emulator)
        self._run(ddl, [], f"create procedure {dataset}.{name}")

    def call_procedure(self, dataset: str, name: str, args: dict[str, object]) -> None:
        proc = load_procedure(name, self.sql_dir)
        values = coerce_args(proc, args)
        script = call_procedure(proc, self.project, dataset, values, self.config.emulator)
        what = f"procedure {dataset}.{name}"
        try:
            with self._fence():
                self._run(script.sql, script.params, what)
        except BigQueryError as exc:
            if exc.reason != "notFound" or "routine" not in str(exc).lower():
                raise
            # Not bootstrapped yet: create it from the same file, then call once more.
            self._create_procedure(dataset, name)
            with self._fence():
                self._run(script.sql, script.params, what)

    def _run(self, sql: str, params: list[Any], what: str) -> None:
        with bq_errors(what):
            job = self.client.query(
                sql,
                job_config=bigquery.QueryJobConfig(query_parameters=params),
                location=self.location,
            )
            with bq_errors(what, job.job_id):
                job.result()

    def ping(self) -> None:
        with bq_errors("ping"):
            list(self.client.list_datasets(max_results=1))
