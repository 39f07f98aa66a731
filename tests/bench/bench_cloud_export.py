"""Benchmark: a cloud FOCUS export file through the extract step, against reading it bare.

Run with `python tests/bench/bench_cloud_export.py [ROWS ...]`. One Parquet file on disk
shaped like the AWS "FOCUS 1.2 with AWS columns" export (24 columns, 4 of them AWS
extensions, row groups of 256k rows). (a) baseline: read it whole with pyarrow and INSERT
it as is into a fresh DuckDB table; (b) the engine: FocusExportProcessor.run, i.e. read in
batches, rename/type to the raw layout, build x_extensions JSON, keep the run's dates and
stream the batches with lineage into one replace write. Each measurement runs in a fresh
child process (as a worker child would), which reports its time and its peak RSS (VmHWM).
Nothing is asserted: timings depend on the machine.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import AbstractContextManager, nullcontext
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import BinaryIO, ClassVar

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

ROWS = 1_000_000
REPEATS = 3
CHUNK = 262_144
START, END = date(2026, 10, 1), date(2026, 10, 31)
NAME = "data/BILLING_PERIOD=2026-10/focus-00001.snappy.parquet"


def chunk(first: int, n: int) -> pa.Table:
    index = range(first, first + n)
    hours = pa.array([datetime(2026, 10, 1) + timedelta(hours=i % 744) for i in index])
    cost = pa.array([(i % 1000) / 997 for i in index], pa.float64())

    def text(value: str) -> pa.Array:
        return pa.array([value] * n)

    return pa.table(
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
            "ResourceId": pa.array([f"i-{i % 5000:08x}" for i in index]),
            "SubAccountId": text("444455556666"),
            "x_ServiceCode": text("AmazonEC2"),
            "x_UsageType": text("BoxUsage:m7g.large"),
            "x_Operation": text("RunInstances"),
            "x_Discounts": pa.array([None] * n, pa.string()),
        }
    )


def export_file(path: Path, n: int) -> Path:
    """The export as a Parquet file, written chunk by chunk (a 10M-row file never in memory)."""
    if path.exists():
        return path
    part = path.with_suffix(".part")
    writer: pq.ParquetWriter | None = None
    for first in range(0, n, CHUNK):
        table = chunk(first, min(CHUNK, n - first))
        writer = writer or pq.ParquetWriter(part, table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()
    part.rename(path)
    return path


# --- what runs in the child process ---------------------------------------------------------


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _bare(file: Path, db: Path) -> None:
    import duckdb

    rows = pq.read_table(file)
    con = duckdb.connect(str(db))
    con.register("rows", rows)
    con.execute("CREATE TABLE t AS SELECT * FROM rows")
    con.close()


def _engine(file: Path, db: Path) -> int:
    from processors.base import StepContext
    from processors.cloud.exports.processor import FocusExportProcessor
    from tests.support.genai import step_context
    from warehouse.duckdb import DuckDBWarehouse

    class OneFile:
        def list_files(self, months: list[date]) -> list[str]:
            return [NAME]

        def fetch(self, name: str) -> BinaryIO:
            return file.open("rb")  # what ExportSource.fetch gives: a local file

    class LocalExport(FocusExportProcessor):
        ps_type: ClassVar[str] = "bench.export"
        provider: ClassVar[str] = "bench"
        default_table: ClassVar[str] = "bench_focus_export_raw"
        endpoint_field: ClassVar[str] = "endpoint_url"

        def source(self, ctx: StepContext) -> OneFile:
            return OneFile()

        def egress(self) -> AbstractContextManager[None]:
            return nullcontext()  # a local file: no connection to decide

    warehouse = DuckDBWarehouse(db, lock_timeout=600)
    ctx = step_context(warehouse, {}, START, END, pipeline_id="bench_billing")
    return LocalExport().run(ctx).rows_written


def child(kind: str, file: Path, db: Path) -> None:
    import processors.cloud.exports.processor  # noqa: F401  (imports are not the step's cost)
    import tests.support.genai  # noqa: F401

    started = time.perf_counter()
    written = _bare(file, db) if kind == "bare" else _engine(file, db)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "peak_rss_mib": peak_rss_mib(), "rows": written}))


# --- the parent -----------------------------------------------------------------------------


def measure(kind: str, file: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [sys.executable, __file__, "--child", kind, str(file), str(Path(tmp) / "w.duckdb")],
            check=True,
            capture_output=True,
            text=True,
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def files_dir() -> Path:
    folder = ROOT / "var" / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def main(rows: int = ROWS) -> dict[str, float]:
    file = export_file(files_dir() / f"focus_{rows}.parquet", rows)
    base = [measure("bare", file) for _ in range(REPEATS)]
    ours = [measure("engine", file) for _ in range(REPEATS)]
    result = {
        "bare_s": statistics.median(r["seconds"] for r in base),
        "engine_s": statistics.median(r["seconds"] for r in ours),
        "bare_rss_mib": max(r["peak_rss_mib"] for r in base),
        "engine_rss_mib": max(r["peak_rss_mib"] for r in ours),
    }
    size = file.stat().st_size / 1e6
    print(
        f"cloud export, {rows:,} rows ({size:.1f} MB Parquet), medians of {REPEATS} (child procs)"
    )
    print(
        f"  read + bare INSERT:                {result['bare_s']:.3f}s"
        f"  peak RSS {result['bare_rss_mib']:.0f} MiB"
    )
    print(
        f"  extract step (stream + normalize + write): {result['engine_s']:.3f}s"
        f"  peak RSS {result['engine_rss_mib']:.0f} MiB"
    )
    print(f"  ratio {result['engine_s'] / result['bare_s']:.2f}x")
    return result


def rows_scaling(sizes: tuple[int, ...]) -> dict[int, dict[str, float]]:
    """The extract step over growing files: time and the child's peak RSS, once each."""
    out: dict[int, dict[str, float]] = {}
    for n in sizes:
        out[n] = measure("engine", export_file(files_dir() / f"focus_{n}.parquet", n))
        print(
            f"  extract {n:>12,} rows: {out[n]['seconds']:8.2f}s  "
            f"peak RSS {out[n]['peak_rss_mib']:6.0f} MiB"
        )
    return out


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--rows":
        rows_scaling(tuple(int(n) for n in sys.argv[2:]))
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else ROWS)
