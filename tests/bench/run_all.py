"""`make bench`: every benchmark in one run, then one summary table.

Figures, not assertions: each benchmark measures its baseline side by side with the
engine path in the same process and prints the ratio.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    system = f"{platform.system()} {platform.machine()}"
    return f"{system}, {os.cpu_count()} cores ({cpu}){mem}, Python {platform.python_version()}"


def main() -> None:
    from tests.bench import (
        bench_cloud_export,
        bench_console,
        bench_engine,
        bench_metrics,
        bench_quota,
        bench_scaling,
        bench_write_partition,
    )

    print(f"machine: {machine()}\n")
    engine = bench_engine.main()
    print()
    write = bench_write_partition.main()
    print()
    quota = bench_quota.main()
    print()
    scaling = bench_scaling.main(write_1m_s=write["write_partition_s"])
    print()
    cloud = bench_cloud_export.main()
    print()
    console = bench_console.main()
    metrics = bench_metrics.main()
    print("\nsummary")
    print(f"{'benchmark':<52} {'baseline':>12} {'engine':>12} {'ratio':>7} {'target':>7}")
    rows = [
        (
            "3-step no-op run, p50 (raw chain vs API+worker)",
            engine["raw_p50_ms"],
            engine["engine_p50_ms"],
            "ms",
            "<= 2",
        ),
        (
            "3-step no-op run, p95 (raw chain vs API+worker)",
            engine["raw_p95_ms"],
            engine["engine_p95_ms"],
            "ms",
            "<= 2",
        ),
        (
            "chord fan-in: 50 x 1-step runs vs 50 parallel steps",
            scaling["singles50_s"],
            scaling["fan50_s"],
            "s",
            "",
        ),
        (
            "API: bare apply_async vs POST /run, p50",
            scaling["apply_async_p50_ms"],
            scaling["api_post_p50_ms"],
            "ms",
            "",
        ),
        (
            "API: bare apply_async vs POST /run, p95",
            scaling["apply_async_p95_ms"],
            scaling["api_post_p95_ms"],
            "ms",
            "",
        ),
        (
            "1M rows: bare INSERT vs write_partition(replace)",
            write["bare_s"],
            write["write_partition_s"],
            "s",
            "<= 1.5",
        ),
        (
            "/metrics, 100k runs: old full aggregate vs page",
            metrics["old_scan_ms"],
            metrics["scrape_ms"],
            "ms",
            "",
        ),
        (
            "1M-row FOCUS export: read+INSERT vs extract step",
            cloud["bare_s"],
            cloud["engine_s"],
            "s",
            "",
        ),
    ]
    for label, base, ours, unit, target in rows:
        figures = f"{base:>10.3f}{unit:<2} {ours:>10.3f}{unit:<2} {ours / base:>6.2f}x"
        print(f"{label:<52} {figures} {target:>7}")
    lua = f"{quota['raw_pairs_per_s']:>10.0f}/s {quota['lua_pairs_per_s']:>10.0f}/s"
    print(
        f"{'quota: raw INCR+DECR vs Lua reserve+release':<52} {lua} {quota['ratio']:>6.2f}x"
        f" {'>= 0.5':>7}"
    )
    for kind in ("sqlite", "postgres"):
        rate = quota[f"{kind}_reservations_per_s"]
        print(f"{'quota: SQL ledger reservations, ' + kind:<52} {'':>12} {rate:>10.0f}/s")
    print(
        f"{'1M rows: re-run of the same key (replaces 1M rows)':<52} {'':>12} "
        f"{write['rerun_s']:>10.3f}s"
    )
    print("\nscaling (ratio to the smallest)")
    steps = [scaling[f"chain{n}_s"] for n in bench_scaling.STEP_COUNTS]
    for n, t in zip(bench_scaling.STEP_COUNTS, steps, strict=True):
        print(f"{f'pipeline of {n} chained no-op steps':<52} {t:>10.3f}s  {t / steps[0]:>6.2f}x")
    writes = scaling["write_s"]
    w0 = bench_scaling.WRITE_SIZES[0]
    for n in bench_scaling.WRITE_SIZES:
        per_row = (writes[n] / n) / (writes[w0] / w0)
        print(
            f"{f'write_partition {n:,} rows':<52} {writes[n]:>10.3f}s  "
            f"{writes[n] / writes[w0]:>6.2f}x  per row {per_row:.2f}x"
        )
    history = scaling["history"]
    h0 = bench_scaling.HISTORY_SIZES[0]
    for n in bench_scaling.HISTORY_SIZES:
        h = history[n]
        print(
            f"{f'history page, {n:,} runs (SQLite), p95':<52} {h['p95_ms']:>9.2f}ms  "
            f"{h['p95_ms'] / history[h0]['p95_ms']:>6.2f}x  {'< 50 ms' if n == 100_000 else ''}"
        )
    print("\nweb console, server-side render p95 (100k runs, 1M FOCUS rows)")
    base = console["baseline_p95_ms"]
    for label, key, target in (
        ("JSON history endpoint (the baseline)", "baseline_p95_ms", ""),
        ("runs list", "runs_p95_ms", "< 3x"),
        ("run detail", "run_p95_ms", "< 3x"),
        ("coverage, 90 days x 20 pipelines", "coverage_p95_ms", "< 3x"),
        ("spend, 90 days (DuckDB)", "spend_p95_ms", "< 500 ms, < 3x"),
    ):
        ms = console[key]
        print(f"{label:<52} {ms:>9.1f}ms  {ms / base:>6.2f}x  {target}")


if __name__ == "__main__":
    main()
