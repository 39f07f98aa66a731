"""Benchmark: DuckDB `write_partition(replace)` against a bare Arrow insert.

Run with `python tests/bench/bench_write_partition.py [ROWS]`. Prints medians of 3 runs:
(a) a bare `INSERT INTO t SELECT * FROM arrow_table` into a fresh file, (b) a replace write of
the same rows into an empty table, (c) the same write again, which replaces every row.
The target is b/a <= 1.5. Nothing is asserted: timings depend on the machine.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from warehouse.base import LINEAGE_FIELDS, LineageKey, TableRef
from warehouse.duckdb import DuckDBWarehouse

ROWS = 1_000_000
REPEATS = 3
RUN_DATE = date(2024, 6, 1)
KEY = LineageKey("bench_org", "bench_pipeline", "bench_cred", RUN_DATE, RUN_DATE)
TABLE = TableRef("bench_dev", "usage")


def make_rows(n: int) -> pa.Table:
    idx = pa.array(range(n), pa.int64())
    providers = pa.array(["openai", "anthropic", "gemini", "mistral"])
    models = pa.array([f"model-{i}" for i in range(16)])
    ingested = datetime(2024, 6, 2, 3, 4, 5, tzinfo=UTC)

    def const(value: object, type_: pa.DataType) -> pa.Array:
        return pa.repeat(pa.scalar(value, type_), n)

    return pa.table(
        {
            "usage_date": const(RUN_DATE, pa.date32()),
            "provider": providers.take(pc.bit_wise_and(idx, 3)),
            "model": models.take(pc.bit_wise_and(idx, 15)),
            "input_tokens": pc.multiply(idx, 7),
            "output_tokens": pc.multiply(idx, 3),
            "cost_usd": pc.divide(pc.cast(idx, pa.float64()), 1000.0),
            "x_org_slug": const(KEY.org_slug, pa.string()),
            "x_pipeline_id": const(KEY.pipeline_id, pa.string()),
            "x_credential_id": const(KEY.credential_id, pa.string()),
            "x_pipeline_run_date": const(RUN_DATE, pa.date32()),
            "x_run_id": pc.binary_join_element_wise("run-", pc.cast(idx, pa.string()), ""),
            "x_ingested_at": const(ingested, pa.timestamp("us", tz="UTC")),
            "x_ingestion_date": const(ingested.date(), pa.date32()),
        },
        schema=pa.schema(
            [
                pa.field("usage_date", pa.date32()),
                pa.field("provider", pa.string()),
                pa.field("model", pa.string()),
                pa.field("input_tokens", pa.int64()),
                pa.field("output_tokens", pa.int64()),
                pa.field("cost_usd", pa.float64()),
                *LINEAGE_FIELDS,
            ]
        ),
    )


def bare_insert(path: Path, rows: pa.Table) -> tuple[float, float]:
    """(insert only, connect + insert + close) seconds, the table created beforehand."""
    # The same DDL (types and NOT NULL lineage) as the write below, so only the write differs.
    DuckDBWarehouse(path).ensure_table(TABLE, rows.schema)
    start = time.perf_counter()
    con = duckdb.connect(str(path))
    con.register("arrow_table", rows)
    t0 = time.perf_counter()
    con.execute("INSERT INTO bench_dev.usage SELECT * FROM arrow_table").fetchall()
    insert_only = time.perf_counter() - t0
    con.close()  # a close checkpoints, so the rows are on disk as after write_partition
    return insert_only, time.perf_counter() - start


def timed_write(wh: DuckDBWarehouse, rows: pa.Table) -> float:
    start = time.perf_counter()
    result = wh.write_partition(TABLE, rows, KEY)
    elapsed = time.perf_counter() - start
    assert result.rows_written == rows.num_rows  # a sanity check, not a timing assertion
    return elapsed


def main(n: int = ROWS) -> dict[str, float]:
    print(f"generating {n:,} rows ...", flush=True)
    rows = make_rows(n)
    bare, bare_full, first, rerun = [], [], [], []
    for i in range(REPEATS):
        with tempfile.TemporaryDirectory() as tmp:
            wh = DuckDBWarehouse(Path(tmp) / "wh.duckdb")
            wh.ensure_table(TABLE, rows.schema)
            # Alternate which goes first so warm-up and machine noise don't favour one side.
            if i % 2:
                first.append(timed_write(wh, rows))
            insert_only, full = bare_insert(Path(tmp) / "bare.duckdb", rows)
            bare.append(insert_only)
            bare_full.append(full)
            if not i % 2:
                first.append(timed_write(wh, rows))
            rerun.append(timed_write(wh, rows))
        print(f"  run {i + 1}: bare {full:.3f}s  write {first[-1]:.3f}s  re-run {rerun[-1]:.3f}s")
    med = {
        "bare_insert_only_s": statistics.median(bare),
        "bare_s": statistics.median(bare_full),
        "write_partition_s": statistics.median(first),
        "rerun_s": statistics.median(rerun),
    }
    med["ratio"] = med["write_partition_s"] / med["bare_s"]
    print(f"rows                                        {n:,}")
    print(f"(a) bare INSERT, connect+insert+close       {med['bare_s']:.3f}s")
    print(f"    bare INSERT statement alone             {med['bare_insert_only_s']:.3f}s")
    print(f"(b) write_partition(replace), empty table   {med['write_partition_s']:.3f}s")
    print(f"(c) write_partition re-run (replaces all)   {med['rerun_s']:.3f}s")
    print(f"ratio b/a = {med['ratio']:.2f} (target <= 1.5)")
    print(f"ratio b/(insert alone) = {med['write_partition_s'] / med['bare_insert_only_s']:.2f}")
    return med


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else ROWS)
