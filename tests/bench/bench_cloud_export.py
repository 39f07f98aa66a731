"""Benchmark: a cloud FOCUS export file through the extract step, against reading it bare.

Run with `python tests/bench/bench_cloud_export.py [ROWS]`. One Parquet file shaped like the
AWS "FOCUS 1.2 with AWS columns" export (24 columns, 4 of them AWS extensions) is held in
memory. (a) baseline: read it with pyarrow and INSERT it as is into a fresh DuckDB table;
(b) the engine: FocusExportProcessor.run, i.e. read, rename/type to the raw layout, build
x_extensions JSON, keep the run's dates and write with lineage (replace). Medians of 3 runs.
Nothing is asserted: timings depend on the machine.
"""

from __future__ import annotations

import io
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from processors.base import StepContext
from processors.cloud.exports.processor import FocusExportProcessor
from tests.support.genai import step_context
from warehouse.duckdb import DuckDBWarehouse

ROWS = 1_000_000
REPEATS = 3
START, END = date(2026, 10, 1), date(2026, 10, 31)


def export_file(n: int) -> bytes:
    hours = pa.array([datetime(2026, 10, 1) + timedelta(hours=i % 744) for i in range(n)])
    cost = pa.array([(i % 1000) / 997 for i in range(n)], pa.float64())

    def text(value: str) -> pa.Array:
        return pa.array([value] * n)

    table = pa.table(
        {
            "BilledCost": cost,
            "EffectiveCost": cost,
            "ListCost": cost,
            "ContractedCost": cost,
            "PricingQuantity": cost,
            "ConsumedQuantity": cost,
            "ChargePeriodStart": hours.cast(pa.timestamp("ms")),
            "ChargePeriodEnd": hours.cast(pa.timestamp("ms")),
            "BillingPeriodStart": text("2026-10-01T00:00:00Z"),
            "ChargeCategory": text("Usage"),
            "ChargeDescription": text("m7g.large on demand"),
            "BillingAccountId": text("111122223333"),
            "BillingCurrency": text("USD"),
            "ProviderName": text("AWS"),
            "ServiceName": text("Amazon Elastic Compute Cloud"),
            "ServiceCategory": text("Compute"),
            "SkuId": text("8QFDGSSEHSKSDAM7"),
            "RegionId": text("us-east-1"),
            "ResourceId": pa.array([f"i-{i % 5000:08x}" for i in range(n)]),
            "SubAccountId": text("444455556666"),
            "x_ServiceCode": text("AmazonEC2"),
            "x_UsageType": text("BoxUsage:m7g.large"),
            "x_Operation": text("RunInstances"),
            "x_Discounts": pa.array([None] * n, pa.string()),
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


class OneFile:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def list_files(self, months: list[date]) -> list[str]:
        return ["data/BILLING_PERIOD=2026-10/focus-00001.snappy.parquet"]

    def fetch(self, name: str) -> bytes:
        return self.data


class InMemoryExport(FocusExportProcessor):
    ps_type: ClassVar[str] = "bench.export"
    provider: ClassVar[str] = "bench"
    default_table: ClassVar[str] = "bench_focus_export_raw"

    def __init__(self, data: bytes) -> None:
        self.files = OneFile(data)

    def source(self, ctx: StepContext) -> OneFile:
        return self.files


def bare(data: bytes, folder: Path) -> float:
    started = time.perf_counter()
    rows = pq.read_table(pa.BufferReader(data))
    con = duckdb.connect(str(folder / "bare.duckdb"))
    con.register("rows", rows)
    con.execute("CREATE TABLE t AS SELECT * FROM rows")
    con.close()
    return time.perf_counter() - started


def engine(data: bytes, folder: Path) -> float:
    warehouse = DuckDBWarehouse(folder / "engine.duckdb")
    ctx = step_context(warehouse, {}, START, END, pipeline_id="bench_billing")
    started = time.perf_counter()
    InMemoryExport(data).run(ctx)
    return time.perf_counter() - started


def main(rows: int = ROWS) -> dict[str, float]:
    data = export_file(rows)
    base, ours = [], []
    for _ in range(REPEATS):
        with tempfile.TemporaryDirectory() as tmp:
            base.append(bare(data, Path(tmp)))
        with tempfile.TemporaryDirectory() as tmp:
            ours.append(engine(data, Path(tmp)))
    result = {"bare_s": statistics.median(base), "engine_s": statistics.median(ours)}
    print(f"cloud export, {rows:,} rows ({len(data) / 1e6:.1f} MB Parquet), medians of {REPEATS}")
    print(f"  read + bare INSERT:              {result['bare_s']:.3f}s")
    print(f"  extract step (normalize + write): {result['engine_s']:.3f}s")
    print(f"  ratio {result['engine_s'] / result['bare_s']:.2f}x")
    return result


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else ROWS)
