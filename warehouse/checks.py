"""Checks every backend makes before a write, so a bad write fails the same way everywhere."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline_ops_core.errors import TerminalError
from warehouse.base import LINEAGE_NAMES, LineageKey, TableRef, WriteMode, check_identifier


def check_layout(
    table: TableRef, schema: pa.Schema, partition_field: str, cluster: tuple[str, ...]
) -> None:
    names = set(schema.names)
    for name in (partition_field, *cluster):
        if name and name not in names:
            raise TerminalError(f"{table}: partition/cluster field {name!r} not in schema")


def check_write(
    table: TableRef, rows: pa.Table, key: LineageKey, mode: WriteMode, merge_keys: tuple[str, ...]
) -> None:
    """Everything a write must satisfy before any SQL runs; `mode` is known valid after it."""
    check_lineage_columns(table, rows)
    for column in rows.column_names:
        check_identifier(column, "column name")
    if mode == "replace":
        check_rows_in_key(table, rows, key)
    elif mode == "merge":
        check_merge(table, rows, key, merge_keys)
    else:
        raise TerminalError(f"{table}: unknown write mode {mode!r}")


def check_stream(table: TableRef, schema: pa.Schema, key: LineageKey) -> None:
    """What a streamed (replace) write must satisfy before any SQL runs; each batch then
    passes `check_rows_in_key` before it is written."""
    check_lineage_columns(table, schema)
    for column in schema.names:
        check_identifier(column, "column name")
    if key.start_date > key.end_date:
        raise TerminalError(f"{table}: key start_date {key.start_date} after {key.end_date}")


def check_lineage_columns(table: TableRef, rows: pa.Table | pa.Schema) -> None:
    names = rows.names if isinstance(rows, pa.Schema) else rows.column_names
    missing = [n for n in LINEAGE_NAMES if n not in names]
    if missing:
        raise TerminalError(f"{table}: rows lack lineage column(s): {', '.join(missing)}")


def check_rows_in_key(table: TableRef, rows: pa.Table | pa.RecordBatch, key: LineageKey) -> None:
    """Refuse rows outside the key: a re-run would not delete them, breaking idempotency."""
    if key.start_date > key.end_date:
        raise TerminalError(f"{table}: key start_date {key.start_date} after {key.end_date}")
    if rows.num_rows == 0:
        return
    checks = {
        "x_org_slug": pc.equal(rows["x_org_slug"], key.org_slug),
        "x_pipeline_id": pc.equal(rows["x_pipeline_id"], key.pipeline_id),
        "x_credential_id": pc.equal(rows["x_credential_id"], key.credential_id),
        "x_pipeline_run_date": pc.and_(
            pc.greater_equal(rows["x_pipeline_run_date"], pa.scalar(key.start_date)),
            pc.less_equal(rows["x_pipeline_run_date"], pa.scalar(key.end_date)),
        ),
    }
    bad = [n for n, ok in checks.items() if not pc.all(ok, skip_nulls=False).as_py()]
    if bad:
        raise TerminalError(
            f"{table}: rows do not match the lineage key in column(s): {', '.join(bad)}"
        )


def check_merge(table: TableRef, rows: pa.Table, key: LineageKey, keys: tuple[str, ...]) -> None:
    if not keys:
        raise TerminalError(f"{table}: merge needs at least one merge key")
    for k in keys:
        check_identifier(k, "merge key")
        if k not in rows.column_names:
            raise TerminalError(f"{table}: merge key {k!r} not in rows")
        if rows[k].null_count:
            raise TerminalError(f"{table}: merge key {k!r} has nulls")
    if rows.num_rows and not pc.all(pc.equal(rows["x_org_slug"], key.org_slug)).as_py():
        raise TerminalError(f"{table}: rows of another org than {key.org_slug!r}")
    if rows.group_by(list(keys)).aggregate([]).num_rows != rows.num_rows:
        raise TerminalError(f"{table}: duplicate merge keys in rows")


def spool_parquet(
    rows: pa.RecordBatchReader, path: Path, check: Callable[[pa.RecordBatch], None]
) -> tuple[int, set[str]]:
    """Write a stream to one local Parquet file, batch by batch, each batch passing `check`
    first. Only the batch in hand is in memory. Returns the number of rows and the names of
    the columns that hold at least one value."""
    count, filled = 0, set()
    with pq.ParquetWriter(path, rows.schema) as out:
        for batch in rows:
            check(batch)
            out.write_batch(batch)
            count += batch.num_rows
            for name, column in zip(batch.schema.names, batch.columns, strict=True):
                if column.null_count < len(column):
                    filled.add(name)
    return count, filled
