"""Lineage stamping and the `ctx.write()` implementation.

Processors hand over plain rows; this module overwrites any `x_*` columns they
set, stamps all seven lineage fields with their exact types, and writes the
slice idempotently. Processors never stamp lineage or choose the write path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date, datetime

import pyarrow as pa
import pyarrow.compute as pc

from pipeline_ops_core.errors import TerminalError
from processors.base import RunLog
from warehouse.base import (
    LINEAGE_FIELDS,
    LINEAGE_NAMES,
    JobContext,
    LineageKey,
    TableRef,
    Warehouse,
    WriteMode,
    WriteResult,
)


def stamp(
    rows: pa.Table,
    key: LineageKey,
    run_id: str,
    ingested_at: datetime,
    date_column: str | None = None,
) -> pa.Table:
    """Return `rows` with the seven lineage columns appended (replacing any given)."""
    data = rows.drop_columns([n for n in rows.column_names if n in LINEAGE_NAMES])
    n = data.num_rows
    if date_column is not None:
        if date_column not in data.column_names:
            raise TerminalError(f"date_column {date_column!r} is not a column of the rows")
        run_dates = pc.cast(data.column(date_column), pa.date32())
        if run_dates.null_count:
            raise TerminalError(f"date_column {date_column!r} has null values")
        if n:
            lo, hi = pc.min(run_dates).as_py(), pc.max(run_dates).as_py()
            if lo < key.start_date or hi > key.end_date:
                # A replace deletes only the run's date range; rows outside it
                # would survive the next re-run and be duplicated.
                raise TerminalError(
                    f"rows dated {lo}..{hi} fall outside the run's range "
                    f"{key.start_date}..{key.end_date}"
                )
    else:
        run_dates = _same(key.start_date, pa.date32(), n)
    values: dict[str, pa.Array | pa.ChunkedArray] = {
        "x_org_slug": _same(key.org_slug, pa.string(), n),
        "x_pipeline_id": _same(key.pipeline_id, pa.string(), n),
        "x_credential_id": _same(key.credential_id, pa.string(), n),
        "x_pipeline_run_date": run_dates,
        "x_run_id": _same(run_id, pa.string(), n),
        "x_ingested_at": _same(ingested_at, pa.timestamp("us", tz="UTC"), n),
        "x_ingestion_date": _same(ingested_at.date(), pa.date32(), n),
    }
    for field in LINEAGE_FIELDS:
        data = data.append_column(field, values[field.name])
    return data


def _same(value: object, kind: pa.DataType, n: int) -> pa.Array:
    # Built by Arrow, not from a Python list of n copies: exports run to millions of rows.
    return pa.repeat(pa.scalar(value, kind), n)


def stamp_batches(
    rows: pa.RecordBatchReader,
    key: LineageKey,
    run_id: str,
    ingested_at: datetime,
    date_column: str | None = None,
) -> pa.RecordBatchReader:
    """`stamp` for a stream: each batch stamped as it is read, all with one ingestion time.

    The stamped schema is known before the first batch (to create the table); a batch
    dated outside the key raises from the reader, inside the write's transaction.
    """
    schema = stamp(rows.schema.empty_table(), key, run_id, ingested_at, date_column).schema

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in rows:
            one = pa.Table.from_batches([batch], rows.schema)
            yield from stamp(one, key, run_id, ingested_at, date_column).to_batches()

    return pa.RecordBatchReader.from_batches(schema, batches())


def make_writer(
    warehouse: Warehouse,
    dataset: str,
    key: LineageKey,
    run_id: str,
    clock: Callable[[], datetime],
    log: RunLog,
    job_context: JobContext | None = None,
) -> Callable[..., WriteResult]:
    """Build the function behind `ctx.write()` for one step attempt.

    `job_context` names the attempt (run, step, attempt). Each write gets the next
    sequence number, so a backend with job ids (BigQuery) can tell the attempt's writes
    apart and a retried attempt finds its own jobs again.
    """
    base = job_context
    writes = 0

    def write(
        table: str,
        rows: pa.Table | pa.RecordBatchReader,
        *,
        mode: WriteMode = "replace",
        merge_keys: tuple[str, ...] = (),
        date_column: str | None = None,
        start_date: date | None = None,
    ) -> WriteResult:
        if mode not in ("replace", "merge"):
            raise TerminalError(f"unknown write mode {mode!r}")
        ref = TableRef(dataset, table)
        # A look-back write replaces from its own start; never narrower than the run.
        reach = (
            key if start_date is None else replace(key, start_date=min(start_date, key.start_date))
        )
        nonlocal writes
        if isinstance(rows, pa.RecordBatchReader):
            if mode != "replace":
                raise TerminalError(
                    "a merge needs all its rows at once (duplicate keys are checked across "
                    "them): pass a table, not record batches"
                )
            stream = stamp_batches(rows, reach, run_id, clock(), date_column)
            warehouse.ensure_dataset(dataset)
            warehouse.ensure_table(ref, stream.schema)
            writes += 1
            ctx = replace(base, seq=writes) if base is not None else None
            result = warehouse.write_stream(ref, stream, reach, job_context=ctx)
        else:
            stamped = stamp(rows, reach, run_id, clock(), date_column)
            warehouse.ensure_dataset(dataset)
            warehouse.ensure_table(ref, stamped.schema)
            writes += 1
            ctx = replace(base, seq=writes) if base is not None else None
            result = warehouse.write_partition(
                ref, stamped, reach, mode=mode, merge_keys=merge_keys, job_context=ctx
            )
        log.info(
            f"wrote {result.rows_written} rows to {ref} ({mode}; replaced {result.rows_deleted})"
        )
        return result

    return write
