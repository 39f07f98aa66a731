"""Server-side render time of the web console's pages on a large org: 100k runs in the
metadata DB (SQLite), 1M FOCUS rows in the DuckDB warehouse.

Pages are requested through Flask's test client (the server's own work, no network), each
REPEAT times; the baseline is the JSON history endpoint (GET /pipelines/history) of the
same org, measured the same way. Targets: every page's p95 under 3x the baseline, spend
under 500 ms on DuckDB. Figures, not assertions.
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

RUNS = 100_000
FOCUS_ROWS = 1_000_000
PIPELINES = 20
REPEAT = 30

PIPELINE_YAML = """
pipeline_id: bench_p{n}
name: Bench pipeline {n}
provider: bench
domain: p{n}
schedule: "0 3 * * *"
steps:
  - step_id: extract
    ps_type: generic.noop
  - step_id: load
    ps_type: generic.noop
    depends_on: [extract]
"""


def _configs(root: Path) -> Path:
    for n in range(PIPELINES):
        path = root / "bench" / f"p{n}" / "daily.yml"
        path.parent.mkdir(parents=True)
        path.write_text(PIPELINE_YAML.format(n=n))
    return root


def _seed_runs(engine: Any, org: str, today: date) -> str:
    """RUNS one-day runs over the last ~5000 days of PIPELINES pipelines; returns the id of
    a run with steps, retries and log lines (the run detail page's subject)."""
    from pipeline.storage.tables import log_lines, pipeline_runs, step_logs

    now = datetime.now(UTC)
    statuses = ["completed"] * 17 + ["failed", "cancelled", "running"]
    rows = []
    for i in range(RUNS):
        pipeline = i % PIPELINES
        day = today - timedelta(days=i // PIPELINES)
        rows.append(
            {
                "run_id": str(uuid.UUID(int=i + 1)),
                "org_slug": org,
                "pipeline_id": f"bench_p{pipeline}",
                "pipeline_path": f"bench/p{pipeline}/daily",
                "status": statuses[i % len(statuses)] if i > PIPELINES * 3 else "completed",
                "idempotency_key": f"{org}|bench_p{pipeline}|default|{day}|{day}|{i}",
                "trigger": "schedule",
                "credential_id": "default",
                "start_date": day,
                "end_date": day,
                "params": {},
                "plan": None,
                "created_at": now - timedelta(days=i // PIPELINES, seconds=pipeline),
                "started_at": now - timedelta(days=i // PIPELINES, seconds=pipeline),
                "ended_at": now - timedelta(days=i // PIPELINES, seconds=pipeline - 30),
                "error_message": None,
            }
        )
    with engine.begin() as conn:
        for start in range(0, len(rows), 5000):
            conn.execute(pipeline_runs.insert(), rows[start : start + 5000])
    subject = rows[0]["run_id"]
    from pipeline.storage.records import PlannedStep, RunPlan

    # Stored as the run store writes it, so RunPlan.from_json reads it back.
    plan = RunPlan(
        pipeline_id="bench_p0",
        dataset=f"{org}_dev",
        levels=(("extract",), ("load",)),
        steps={
            "extract": PlannedStep("generic.noop", {}, (), 60, 90, 1, 0.0),
            "load": PlannedStep("generic.noop", {}, ("extract",), 60, 90, 1, 0.0),
        },
    ).to_json()
    started = now - timedelta(minutes=5)
    attempts = []
    for n, (step, status) in enumerate(
        [("extract", "retrying"), ("extract", "completed"), ("load", "completed")]
    ):
        attempts.append(
            {
                "run_id": subject,
                "step_id": step,
                "attempt": 1 if n != 1 else 2,
                "status": status,
                "started_at": started + timedelta(seconds=20 * n),
                "ended_at": started + timedelta(seconds=20 * n + 15),
                "duration_ms": 15000,
                "rows_written": 1000,
            }
        )
    lines = [
        {
            "run_id": subject,
            "ts": started + timedelta(milliseconds=100 * n),
            "level": "INFO" if n % 10 else "WARNING",
            "step_id": "extract",
            "attempt": 1,
            "message": f"page {n} fetched: 1000 rows",
        }
        for n in range(500)
    ]
    with engine.begin() as conn:
        conn.execute(
            pipeline_runs.update().where(pipeline_runs.c.run_id == subject), {"plan": plan}
        )
        conn.execute(step_logs.insert(), attempts)
        conn.execute(log_lines.insert(), lines)
    return subject


def _seed_focus(warehouse_file: Path, dataset: str, today: date) -> None:
    import duckdb

    first = today - timedelta(days=89)
    con = duckdb.connect(str(warehouse_file))
    try:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {dataset}")
        con.execute(
            f"""
            CREATE TABLE {dataset}.cost_data_standard_1_3 AS
            SELECT
              (TIMESTAMPTZ '{first}T00:00:00+00:00' + to_days(CAST(i % 90 AS INTEGER)))
                AS ChargePeriodStart,
              CAST((i % 997) / 100.0 AS DECIMAL(38, 9)) AS BilledCost,
              CAST((i % 997) / 110.0 AS DECIMAL(38, 9)) AS EffectiveCost,
              CAST((i % 997) / 90.0 AS DECIMAL(38, 9)) AS ListCost,
              'USD' AS BillingCurrency,
              ['AWS', 'Google Cloud', 'Microsoft', 'OpenAI', 'Anthropic'][i % 5 + 1]
                AS ServiceProviderName,
              ['Compute', 'Storage', 'AI and Machine Learning', 'Networking'][i % 4 + 1]
                AS ServiceCategory,
              'Service ' || CAST(i % 40 AS VARCHAR) AS ServiceName,
              CASE WHEN i % 5 >= 3 THEN 'model-' || CAST(i % 12 AS VARCHAR) END AS x_model,
              'SKU-' || CAST(i % 300 AS VARCHAR) AS SkuId,
              CASE WHEN i % 1000 = 0 THEN 'unpriced' ELSE 'priced' END AS x_price_status,
              'run-' || CAST(i % 2000 AS VARCHAR) AS x_run_id
            FROM range({FOCUS_ROWS}) t(i)
            """
        )
    finally:
        con.close()


def _p95(values: list[float]) -> float:
    from tests.bench.common import pct

    return pct(values, 0.95)


def main() -> dict[str, float]:
    from app import create_app
    from pipeline.bootstrap import build_services
    from pipeline.settings import Settings
    from pipeline.storage.db import upgrade
    from tests.support.doubles import NullDispatcher

    tmp = Path(tempfile.mkdtemp(prefix="po-bench-console-"))
    settings = Settings(
        var_dir=tmp,
        database_url=f"sqlite:///{tmp / 'meta.db'}",
        redis_url="redis://127.0.0.1:1/0",
        warehouse_url=f"duckdb:///{tmp / 'warehouse.duckdb'}",
        configs_dir=_configs(tmp / "configs"),
        org_rate_limit=0,
        signin_rate_limit=0,
        session_key="bench-session-key-0123456789abcdef",
        eager=True,
    )
    upgrade(settings.database_url)
    services = build_services(settings, NullDispatcher())
    key = services.orgs.create("bench")
    today = datetime.now(UTC).date()
    t0 = time.perf_counter()
    subject = _seed_runs(services.store.engine, "bench", today)
    _seed_focus(tmp / "warehouse.duckdb", settings.org_dataset("bench"), today)
    print(
        f"console pages: seeded {RUNS:,} runs and {FOCUS_ROWS:,} FOCUS rows in "
        f"{time.perf_counter() - t0:.1f}s; {REPEAT} requests per page (Flask test client)"
    )
    app = create_app(settings, services)
    client = app.test_client()
    form = client.get("/ui/signin").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token is not None
    signed = client.post("/ui/signin", data={"key": key, "csrf_token": token.group(1)})
    assert signed.status_code == 302, signed.text

    pages = {
        "baseline: GET /pipelines/history (JSON, 50 runs)": (
            "/pipelines/history/bench",
            {"X-API-Key": key},
        ),
        "runs list (50 runs)": ("/ui/bench/runs", {}),
        "run detail (3 attempts, 500 log lines)": (f"/ui/bench/runs/{subject}", {}),
        "coverage (90 days x 20 pipelines)": ("/ui/bench/coverage?days=90", {}),
        "spend (90 days, 1M FOCUS rows)": ("/ui/bench/spend?days=90", {}),
    }
    results: dict[str, float] = {}
    for label, (path, headers) in pages.items():
        first = client.get(path, headers=headers)
        assert first.status_code == 200, (path, first.status_code, first.text[:500])
        times = []
        for _ in range(REPEAT):
            start = time.perf_counter()
            response = client.get(path, headers=headers)
            times.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200
        results[label] = _p95(times)
    base = results["baseline: GET /pipelines/history (JSON, 50 runs)"]
    print(f"{'page':<48} {'p95 ms':>9} {'x baseline':>11} {'target':>16}")
    for label, p95 in results.items():
        target = "< 500 ms, < 3x" if label.startswith("spend") else "< 3x"
        if label.startswith("baseline"):
            target = ""
        print(f"{label:<48} {p95:>9.1f} {p95 / base:>10.2f}x {target:>16}")
    return {
        "baseline_p95_ms": base,
        "runs_p95_ms": results["runs list (50 runs)"],
        "run_p95_ms": results["run detail (3 attempts, 500 log lines)"],
        "coverage_p95_ms": results["coverage (90 days x 20 pipelines)"],
        "spend_p95_ms": results["spend (90 days, 1M FOCUS rows)"],
    }


if __name__ == "__main__":
    main()
