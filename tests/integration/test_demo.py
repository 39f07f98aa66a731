"""`make demo` works: the demo script starts redis-server, a worker and gunicorn, runs the
demo pipeline over HTTP, prints the report and stops what it started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb

from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


def run_demo(var_dir: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PIPELINE_OPS_VAR_DIR": str(var_dir),
        "PORT": str(free_port()),
        **extra,
    }
    for name in ("DATABASE_URL", "WAREHOUSE_URL", "REDIS_URL", "PIPELINE_OPS_CONFIGS_DIR"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
    )


def demo_rows(var_dir: Path) -> int:
    con = duckdb.connect(str(var_dir / "warehouse.duckdb"), read_only=True)
    try:
        return int(con.execute("SELECT COUNT(*) FROM demo_org_dev.demo_daily_cost").fetchone()[0])
    finally:
        con.close()


def test_demo_runs_end_to_end_and_twice_without_duplicates(tmp_path: Path) -> None:
    first = run_demo(tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    out = first.stdout
    assert "POST /pipelines/run/demo_org/demo/sample/genai_usage -> 202" in out
    assert "transitions: pending -> validating -> queued -> running -> completed" in out
    assert "spend by provider" in out and "stopped the worker, the API and redis-server" in out
    assert demo_rows(tmp_path) == 35  # 7 days x 5 models
    second = run_demo(tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert demo_rows(tmp_path) == 35


def test_demo_runs_in_process_without_redis(tmp_path: Path) -> None:
    result = run_demo(tmp_path, PIPELINE_OPS_DEMO_LOCAL="1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "running in-process" in result.stdout
    assert ": completed in" in result.stdout
    assert demo_rows(tmp_path) == 35
