"""GET /metrics with 100,000 stored runs: the scrape reads running totals, so its time
should not follow the history. Baseline: the aggregate the scrape used to run over every
run and step row (still measured here, side by side). Figures, not assertions.

SQLite metadata DB in a temp dir; Redis is pointed at a closed port, so the Redis half
of the page is left out (it reads a few keys whatever the history).
"""

from __future__ import annotations

import tempfile
import time
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import case, func, insert, select, text

RUNS = 100_000
REPEAT = 20
BOUNDS_MS = (100, 500, 1000, 5000, 15000, 30000, 60000, 120000, 300000, 600000, 1800000, 3600000)


def _seed(engine, now: datetime) -> None:  # type: ignore[no-untyped-def]
    from pipeline.storage.tables import organizations, pipeline_runs, step_logs

    with engine.begin() as conn:
        conn.execute(
            insert(organizations).values(
                org_slug="bench", name="bench", api_key_prefix="bench001", api_key_hash="0" * 64,
                created_at=now,
            )
        )  # fmt: skip
        for start in range(0, RUNS, 10_000):
            runs, steps = [], []
            for n in range(start, start + 10_000):
                run_id = str(uuid.uuid4())
                ended = now - timedelta(minutes=n)
                day = date(2025, 1, 1) + timedelta(days=n % 365)
                runs.append({
                    "run_id": run_id, "org_slug": "bench", "pipeline_id": f"p{n % 20}",
                    "pipeline_path": f"bench/x/p{n % 20}",
                    "status": "completed" if n % 10 else "failed",
                    "idempotency_key": f"k{n}", "credential_id": "default", "start_date": day,
                    "end_date": day, "params": {}, "created_at": ended, "ended_at": ended,
                })  # fmt: skip
                steps.append({
                    "run_id": run_id, "step_id": "s", "attempt": 1, "status": "completed",
                    "started_at": ended, "ended_at": ended, "duration_ms": n % 5000,
                    "rows_written": 1,
                })  # fmt: skip
            conn.execute(insert(pipeline_runs), runs)
            conn.execute(insert(step_logs), steps)


def _backfill_counters(engine) -> None:  # type: ignore[no-untyped-def]
    """The totals migration 0016b computes from existing rows."""
    import importlib

    migration = importlib.import_module("migrations.versions.0016b_metric_counters")
    whens = " ".join(
        f"WHEN duration_ms <= {int(b * 1000)} THEN '{float(b)}'"
        for b in migration.STEP_BUCKETS_SECONDS
    )
    bucket = f"CASE {whens} ELSE '+Inf' END"
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO org_meta_counters (name, org_slug, pipeline_id, status, le, value, total,"
            " last_at) SELECT 'runs', org_slug, pipeline_id, status, '', COUNT(*), 0, MAX(ended_at)"
            " FROM org_meta_pipeline_runs GROUP BY org_slug, pipeline_id, status"
        ))  # fmt: skip
        conn.execute(text(
            "INSERT INTO org_meta_counters (name, org_slug, pipeline_id, status, le, value, total)"
            f" SELECT 'step_duration', '', '', status, {bucket}, COUNT(*),"
            " SUM(duration_ms) / 1000.0"
            f" FROM org_meta_step_logs GROUP BY status, {bucket}"
        ))  # fmt: skip


def _old_scan(engine) -> None:  # type: ignore[no-untyped-def]
    """What every scrape used to run: aggregates over every run and step row."""
    from pipeline.storage.tables import dispatches, pipeline_runs, step_logs

    runs, steps = pipeline_runs.c, step_logs.c
    with engine.connect() as conn:
        conn.execute(select(runs.status, runs.pipeline_id, func.count()).group_by(
            runs.status, runs.pipeline_id)).all()  # fmt: skip
        columns = [func.sum(case((steps.duration_ms <= b, 1), else_=0)) for b in BOUNDS_MS]
        conn.execute(
            select(steps.status, func.count(), func.sum(steps.duration_ms), *columns)
            .where(steps.duration_ms.is_not(None)).group_by(steps.status)
        ).all()  # fmt: skip
        conn.execute(select(dispatches.c.status, func.count()).group_by(dispatches.c.status)).all()


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def main() -> dict[str, float]:
    from app import create_app
    from pipeline.bootstrap import build_services
    from pipeline.settings import Settings
    from pipeline.storage.db import upgrade
    from tests.support.doubles import NullDispatcher
    from tests.support.servers import free_port

    tmp = Path(tempfile.mkdtemp(prefix="po-bench-metrics-"))
    settings = Settings.from_env({
        "PIPELINE_OPS_VAR_DIR": str(tmp), "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
    })  # fmt: skip
    settings = replace(settings, metrics_cache_seconds=0)
    upgrade(settings.database_url)
    services = build_services(settings, NullDispatcher())
    engine = services.store.engine
    t0 = time.perf_counter()
    _seed(engine, datetime.now(UTC))
    _backfill_counters(engine)
    print(f"metrics: {RUNS:,} runs and step attempts seeded in {time.perf_counter() - t0:.1f}s")

    client = create_app(services=services).test_client()
    scrape, old = [], []
    for _ in range(REPEAT):
        t = time.perf_counter()
        assert client.get("/metrics").status_code == 200
        scrape.append(time.perf_counter() - t)
        t = time.perf_counter()
        _old_scan(engine)
        old.append(time.perf_counter() - t)
    result = {"old_scan_ms": _median(old) * 1000, "scrape_ms": _median(scrape) * 1000}
    print(
        f"metrics: {RUNS:,} runs, median of {REPEAT}: full-table aggregate "
        f"{result['old_scan_ms']:.1f} ms (the old scrape's DB work), whole /metrics page "
        f"{result['scrape_ms']:.1f} ms"
    )
    return result


if __name__ == "__main__":
    main()
