"""FocusExportProcessor: files streamed into one write; nothing written on a bad file."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from datetime import date
from pathlib import Path
from typing import BinaryIO, ClassVar

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline_ops_core.errors import TerminalError
from processors.base import StepContext
from processors.cloud.exports import files
from processors.cloud.exports.processor import FocusExportProcessor, billing_months
from tests.support.genai import step_context
from warehouse.base import TableRef
from warehouse.duckdb import DuckDBWarehouse

HEADER = "BilledCost,ChargePeriodStart\n"


class FilesInMemory:
    """An object store of named files; which names each month lists is the test's choice."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.asked: list[list[date]] = []

    def list_files(self, months: list[date]) -> list[str]:
        self.asked.append(months)
        return sorted(self.files)

    def fetch(self, name: str) -> BinaryIO:
        return io.BytesIO(self.files[name])


class Example(FocusExportProcessor):
    ps_type: ClassVar[str] = "cloud.example"
    provider: ClassVar[str] = "example"
    default_table: ClassVar[str] = "example_focus_raw"

    def __init__(self, store: FilesInMemory) -> None:
        self.store = store

    def source(self, ctx: StepContext) -> FilesInMemory:
        return self.store

    def egress(self) -> AbstractContextManager[None]:
        return nullcontext()  # the store is in memory: no connection to decide


def raw(warehouse: DuckDBWarehouse) -> list[tuple]:
    if warehouse.table_schema(TableRef("acme_dev", "example_focus_raw")) is None:
        return []
    return warehouse.query(
        "SELECT charge_date, billed_cost, x_pipeline_run_date FROM `acme_dev.example_focus_raw` "
        "ORDER BY charge_date"
    ).to_pylist()


def test_billing_months() -> None:
    assert billing_months(date(2026, 11, 30), date(2027, 1, 1)) == [
        date(2026, 11, 1),
        date(2026, 12, 1),
        date(2027, 1, 1),
    ]
    with pytest.raises(TerminalError, match="before start date"):
        billing_months(date(2026, 2, 1), date(2026, 1, 1))


def test_rows_of_the_run_dates_are_written_once_keyed_by_charge_date(tmp_path: Path) -> None:
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    store = FilesInMemory(
        {
            "a.csv": (HEADER + "1.10,2026-10-01T00:00:00Z\n2.20,2026-10-02T00:00:00Z\n").encode(),
            "b.csv.gz": gzip.compress((HEADER + "3.30,2026-10-02T12:00:00Z\n").encode()),
        }
    )
    ctx = step_context(warehouse, {}, date(2026, 10, 2), date(2026, 10, 31))
    result = Example(store).run(ctx)
    assert store.asked == [[date(2026, 10, 1)]]
    assert result.rows_written == 2
    assert result.metrics == {"files": 2, "rows": 2, "billed_cost": 5.5}
    rows = raw(warehouse)
    assert [(r["billed_cost"], r["x_pipeline_run_date"]) for r in rows] == [
        (2.2, date(2026, 10, 2)),
        (3.3, date(2026, 10, 2)),
    ]
    Example(store).run(ctx)  # a re-run replaces its dates
    assert len(raw(warehouse)) == 2


def test_a_corrupt_file_after_good_ones_writes_nothing(tmp_path: Path) -> None:
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    store = FilesInMemory(
        {"a.csv": (HEADER + "1,2026-10-01\n").encode(), "b.parquet": b"not parquet"}
    )
    with pytest.raises(TerminalError, match=r"b\.parquet: not a readable Parquet file"):
        Example(store).run(step_context(warehouse, {}, date(2026, 10, 1)))
    assert raw(warehouse) == []


def test_no_files_is_a_clear_error(tmp_path: Path) -> None:
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    with pytest.raises(TerminalError, match="no example export files found for 2026-10"):
        Example(FilesInMemory({})).run(step_context(warehouse, {}, date(2026, 10, 1)))
    assert raw(warehouse) == []


class CountingDuckDB(DuckDBWarehouse):
    """The real DuckDB warehouse, noting the size of each batch a streamed write gets."""

    batches: list[int]

    def write_stream(self, table, rows, key, *, job_context=None):  # type: ignore[no-untyped-def]
        self.batches = []

        def counted() -> Iterator[pa.RecordBatch]:
            for batch in rows:
                self.batches.append(batch.num_rows)
                yield batch

        reader = pa.RecordBatchReader.from_batches(rows.schema, counted())
        return super().write_stream(table, reader, key, job_context=job_context)


def parquet_file(days: list[str]) -> bytes:
    sink = io.BytesIO()
    table = pa.table({"BilledCost": [1.0] * len(days), "ChargePeriodStart": days})
    pq.write_table(table, sink, row_group_size=3)
    return sink.getvalue()


def test_files_are_streamed_to_the_warehouse_batch_by_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "BATCH_ROWS", 4)
    monkeypatch.setattr(files, "CSV_BLOCK_BYTES", 64)
    warehouse = CountingDuckDB(tmp_path / "w.duckdb")
    csv_rows = "".join(f"2.00,2026-10-{d:02d}T00:00:00Z\n" for d in range(1, 11))
    store = FilesInMemory(
        {
            "a.parquet": parquet_file([f"2026-10-{d:02d}" for d in range(1, 11)]),
            "b.csv.gz": gzip.compress((HEADER + csv_rows).encode()),
        }
    )
    ctx = step_context(warehouse, {}, date(2026, 10, 1), date(2026, 10, 31))
    result = Example(store).run(ctx)
    assert result.rows_written == 20
    assert result.metrics == {"files": 2, "rows": 20, "billed_cost": 30.0}
    assert result.read is not None
    assert (result.read.rows_read, result.read.first_date) == (20, date(2026, 10, 1))
    # Many small batches, none bigger than the reader's batch: never the whole file at once.
    assert sum(warehouse.batches) == 20 and len(warehouse.batches) >= 6
    assert max(warehouse.batches) <= 4
    assert len(raw(warehouse)) == 20


def test_a_file_unreadable_half_way_leaves_the_previous_run_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "CSV_BLOCK_BYTES", 64)
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    good = (HEADER + "".join(f"1.00,2026-10-{d:02d}\n" for d in range(1, 9))).encode()
    ctx = step_context(warehouse, {}, date(2026, 10, 1), date(2026, 10, 31))
    Example(FilesInMemory({"a.csv": good})).run(ctx)
    assert len(raw(warehouse)) == 8
    # The first blocks of b.csv parse and are written; a later one has a row too many.
    broken = good + b"1.00,2026-10-09,extra\n"
    with pytest.raises(TerminalError, match=r"b\.csv: not a readable CSV file"):
        Example(FilesInMemory({"a.csv": good, "b.csv": broken})).run(ctx)
    assert len(raw(warehouse)) == 8  # the whole streamed write was rolled back
