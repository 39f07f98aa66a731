"""`make demo` works: the demo script starts redis-server, a worker and gunicorn, runs the
demo pipeline over HTTP, prints the report and stops what it started."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx

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


def query(var_dir: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(var_dir / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def demo_rows(var_dir: Path) -> int:
    return int(query(var_dir, "SELECT COUNT(*) FROM demo_org_dev.demo_daily_cost")[0][0])


def focus_spend(var_dir: Path) -> list[tuple]:
    return query(
        var_dir,
        "SELECT x_provider, x_model, COUNT(*), ROUND(SUM(BilledCost), 6)"
        " FROM demo_org_dev.cost_data_standard_1_3 GROUP BY ALL ORDER BY ALL",
    )


def readme_duckdb_query() -> str:
    """The README's FOCUS spend query for DuckDB ("Cloud billing"), as written."""
    text = (ROOT / "README.md").read_text().split("The same on DuckDB", 1)[1]
    found = re.search(r"```sql\n(.*?)```", text, re.DOTALL)
    assert found, "the README lost its DuckDB query"
    return found.group(1)


GENAI_LINES = (
    "POST /pipelines/run/demo_org/genai/payg/openai -> 202: completed",
    "POST /pipelines/run/demo_org/genai/payg/anthropic -> 202: completed",
    "POST /pipelines/run/demo_org/genai/unified/consolidate -> 202: completed",
    "spend by provider and model (cost_data_standard_1_3, FOCUS 1.3), 2026-01-01..2026-01-07:",
)


def test_demo_runs_end_to_end_and_twice_without_duplicates(tmp_path: Path) -> None:
    first = run_demo(tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    out = first.stdout
    assert "POST /pipelines/run/demo_org/demo/sample/genai_usage -> 202" in out
    assert "transitions: pending -> validating -> queued -> running -> completed" in out
    assert "spend by provider" in out and "stopped the worker, the API and redis-server" in out
    console = re.search(r"web console: (http://127\.0\.0\.1:\d+)/ui/demo_org/runs\n", out)
    assert console, out
    assert f"sign in with the demo org's API key, saved in {tmp_path / 'demo_api_key'}" in out
    assert demo_rows(tmp_path) == 35  # 7 days x 5 models
    # The GenAI part: OpenAI and Anthropic sample APIs over HTTP, then consolidate.
    for line in GENAI_LINES:
        assert line in out
    spend = focus_spend(tmp_path)
    assert {row[0] for row in spend} == {"openai", "anthropic"}
    assert "gpt-4o-mini-2024-07-18" in out and "claude-sonnet-4-5-20250929" in out
    readme = query(tmp_path, readme_duckdb_query())
    assert {row[0] for row in readme} == {"OpenAI", "Anthropic"}, readme
    assert all(row[2] > 0 for row in readme)
    # The second time with KEEP=1: the stack stays up, and the console it names works.
    second = run_demo(tmp_path, PIPELINE_OPS_DEMO_KEEP="1")
    kept = re.search(r"KEEP=1: .* stop them: kill ([\d ]+)\n", second.stdout)
    try:
        assert second.returncode == 0, second.stdout + second.stderr
        assert "stopped the worker" not in second.stdout and kept, second.stdout
        found = re.search(r"web console: (http://\S+)/ui/demo_org/runs\n", second.stdout)
        assert found, second.stdout
        key = (tmp_path / "demo_api_key").read_text().strip()
        assert_console_signs_in(found.group(1), key)
    finally:
        for pid in kept.group(1).split() if kept else []:
            stop_pid(int(pid))
    assert demo_rows(tmp_path) == 35
    assert focus_spend(tmp_path) == spend


def stop_pid(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def assert_console_signs_in(base: str, key: str) -> None:
    with httpx.Client(base_url=base, timeout=10) as http:
        form = http.get("/ui/signin")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert form.status_code == 200 and token
        signed = http.post("/ui/signin", data={"key": key, "csrf_token": token.group(1)})
        assert signed.status_code == 302
        runs = http.get("/ui/demo_org/runs")
        assert runs.status_code == 200 and "demo/sample/genai_usage" in runs.text


def test_demo_runs_in_process_without_redis(tmp_path: Path) -> None:
    result = run_demo(tmp_path, PIPELINE_OPS_DEMO_LOCAL="1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "running in-process" in result.stdout
    assert ": completed in" in result.stdout
    assert demo_rows(tmp_path) == 35
    assert "genai/unified/consolidate: completed" in result.stdout
    assert {row[0] for row in focus_spend(tmp_path)} == {"openai", "anthropic"}
