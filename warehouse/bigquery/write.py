"""One idempotent BigQuery write: stage with a load job, then one DML job, reusing both.

1. Look up this write's DML job by its deterministic id. Finished: report it; done.
2. Else load the rows (Parquet, no streaming inserts) into the staging table named per
   run, step, attempt and write, unless this attempt's load job already finished and the
   staging table is still there. The staging table expires by itself (STAGING_TTL).
3. Run the replace transaction or the MERGE, as a DML job under its deterministic id.
4. Drop the staging table, whatever happened.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq
from google.api_core import exceptions as gexc
from google.cloud import bigquery

from pipeline_ops_core.errors import PipelineOpsError, TerminalError
from warehouse.base import JobContext, LineageKey, TableRef, WriteMode, WriteResult
from warehouse.bigquery.client import BigQueryConfig
from warehouse.bigquery.errors import bq_errors
from warehouse.bigquery.jobs import STAGING_TTL, WriteJobs, find_reusable, start_once
from warehouse.bigquery.sql import Script, merge_script, replace_script
from warehouse.bigquery.types import arrow_type, bq_type_name


class StagedRows:
    """The rows of one write, as the Parquet file its load job sends: written on first use,
    so a reused job never reads them. From a table (`of_table`) or from record batches
    (`of_batches`: spooled to a temp file batch by batch, so memory follows the batch)."""

    def __init__(
        self, columns: list[str], fill: Callable[[], tuple[BinaryIO, pa.Schema, int]]
    ) -> None:
        self.columns = columns
        self._fill = fill
        self._made: tuple[BinaryIO, pa.Schema, int] | None = None

    @classmethod
    def of_table(cls, rows: pa.Table) -> StagedRows:
        def fill() -> tuple[BinaryIO, pa.Schema, int]:
            data = staging_rows(rows)
            buf = io.BytesIO()
            pq.write_table(data, buf)
            return buf, data.schema, rows.num_rows

        return cls(rows.column_names, fill)

    @classmethod
    def of_batches(
        cls, rows: pa.RecordBatchReader, check: Callable[[pa.RecordBatch], None]
    ) -> StagedRows:
        def fill() -> tuple[BinaryIO, pa.Schema, int]:
            schema = staging_rows(rows.schema.empty_table()).schema
            spooled = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
            count = 0
            try:
                with pq.ParquetWriter(spooled, schema) as out:
                    for batch in rows:
                        check(batch)
                        out.write_table(staging_rows(pa.Table.from_batches([batch])))
                        count += batch.num_rows
            except BaseException:
                spooled.close()
                raise
            return spooled, schema, count

        return cls(rows.schema.names, fill)

    def parquet(self) -> tuple[BinaryIO, pa.Schema, int]:
        if self._made is None:
            self._made = self._fill()
        return self._made

    @property
    def num_rows(self) -> int:
        return self.parquet()[2]

    def close(self) -> None:
        if self._made is not None:
            self._made[0].close()


class StagedWrite:
    def __init__(self, client: Any, config: BigQueryConfig, table: TableRef, ctx: JobContext):
        self.client, self.config, self.table = client, config, table
        self.jobs = WriteJobs.for_write(config.project, table, ctx)
        self.staging_path = f"{config.project}.{self.jobs.staging}"

    def run(
        self,
        rows: pa.Table | StagedRows,
        key: LineageKey,
        mode: WriteMode,
        merge_keys: tuple[str, ...],
        fence: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext,
    ) -> WriteResult:
        staged = rows if isinstance(rows, StagedRows) else StagedRows.of_table(rows)
        try:
            return self._run(staged, key, mode, merge_keys, fence)
        finally:
            staged.close()

    def _run(
        self,
        staged: StagedRows,
        key: LineageKey,
        mode: WriteMode,
        merge_keys: tuple[str, ...],
        fence: Callable[[], AbstractContextManager[None]],
    ) -> WriteResult:
        project, staging, inline = self.config.project, self.jobs.staging, self.config.emulator
        if mode == "replace":
            script = replace_script(project, self.table, staging, staged.columns, key, inline)
        else:
            script = merge_script(
                project, self.table, staging, staged.columns, merge_keys, key.org_slug, inline
            )
        try:
            done, dml_id = find_reusable(
                self.client, self.jobs, "dml", self.config.location, lambda job: True
            )
            if done is None:
                self._stage(staged)
                # Checked immediately before the DML transaction and held while it runs:
                # a cancel waits for it, or the job never starts.
                with fence():
                    done = start_once(self.client, dml_id, self.config.location, self._dml(script))
                    with bq_errors(f"{mode} into {self.table}", dml_id):
                        done.result()
            deleted, written = _counts(done, staged)
        except PipelineOpsError:
            # The write failed: drop staging if possible, but report the write's error.
            with contextlib.suppress(Exception):
                self.client.delete_table(self.staging_path, not_found_ok=True)
            raise
        with bq_errors(f"drop staging table {staging}"):
            self.client.delete_table(self.staging_path, not_found_ok=True)
        return WriteResult(table=str(self.table), rows_written=written, rows_deleted=deleted)

    def _staged(self, job: Any) -> bool:
        with bq_errors("staging lookup"):
            try:
                self.client.get_table(self.staging_path)
                return True
            except gexc.NotFound:
                return False

    def _stage(self, rows: StagedRows) -> None:
        """Load `rows` into the staging table, unless this attempt's load already did."""
        location = self.config.location
        done, load_id = find_reusable(self.client, self.jobs, "load", location, self._staged)
        if done is not None:
            return
        buf, schema, _ = rows.parquet()
        staging = staging_table(self.staging_path, schema, datetime.now(UTC))
        with bq_errors(f"create staging table {self.jobs.staging}"):
            self.client.create_table(staging, exists_ok=True)
        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            schema=staging.schema,
            decimal_target_types=["NUMERIC", "BIGNUMERIC"],
        )

        def start(job_id: str) -> Any:
            buf.seek(0)
            # No size=: a resumable upload (the emulator refuses the multipart one).
            return self.client.load_table_from_file(
                buf, self.staging_path, job_config=config, job_id=job_id, location=location
            )

        job = start_once(self.client, load_id, location, start)
        with bq_errors(f"load into {self.jobs.staging}", load_id):
            job.result()

    def _dml(self, script: Script) -> Any:
        def start(job_id: str) -> Any:
            return self.client.query(
                script.sql,
                job_config=bigquery.QueryJobConfig(query_parameters=script.params),
                job_id=job_id,
                job_retry=None,  # a job id is used once; a retry is a new generation
                location=self.config.location,
            )

        return start


def schema_fields(schema: pa.Schema, nullable: bool = False) -> list[bigquery.SchemaField]:
    """BigQuery columns for an Arrow schema; NOT NULL becomes REQUIRED unless `nullable`."""
    fields = []
    for f in schema:
        mode = "NULLABLE" if nullable or f.nullable else "REQUIRED"
        fields.append(bigquery.SchemaField(f.name, bq_type_name(f), mode=mode))
    return fields


def arrow_field(field: bigquery.SchemaField) -> pa.Field:
    if field.mode == "REPEATED" or field.field_type in ("RECORD", "STRUCT"):
        raise TerminalError(f"column {field.name!r}: nested BigQuery columns are not supported")
    return pa.field(field.name, arrow_type(field.field_type), nullable=field.mode != "REQUIRED")


def staging_table(path: str, schema: pa.Schema, now: datetime) -> bigquery.Table:
    """The staging table's definition: all columns nullable, expiring by itself."""
    table = bigquery.Table(path, schema=schema_fields(schema, nullable=True))
    table.expires = now + STAGING_TTL
    return table


def staging_rows(rows: pa.Table) -> pa.Table:
    """Rows cast to the Arrow type of their BigQuery type, so Parquet carries it exactly."""
    schema = pa.schema(
        [pa.field(f.name, arrow_type(bq_type_name(f)), nullable=True) for f in rows.schema]
    )
    columns = []
    for f, col in zip(schema, rows.columns, strict=True):
        if isinstance(col.type, pa.BaseExtensionType):
            col = col.cast(col.type.storage_type)
        columns.append(col.cast(f.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _counts(job: Any, rows: StagedRows) -> tuple[int, int]:
    """(rows_deleted, rows_written) from the script's final SELECT."""
    with bq_errors("read write counts", job.job_id):
        result = list(job.result())
    if not result:  # the results of a reused job expire after a day
        return 0, rows.num_rows
    return int(result[0]["rows_deleted"]), int(result[0]["rows_written"])
