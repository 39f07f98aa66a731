"""Engine overhead: a 3-step no-op pipeline through the API and a worker, against a raw
Celery chain of 3 no-op tasks on the same Redis and the same worker.

Prints p50/p95 per-run latency of both, side by side in one run, and their ratio.
Figures, not assertions.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.common import pct  # noqa: E402 - needs the sys.path entry above

RUNS = int(os.environ.get("BENCH_RUNS", "40"))

PIPELINE = """
pipeline_id: bench_noop3
name: Three no-op steps in a chain
provider: bench
domain: noop
steps:
  - {step_id: a, ps_type: generic.noop}
  - {step_id: b, ps_type: generic.noop, depends_on: [a]}
  - {step_id: c, ps_type: generic.noop, depends_on: [b]}
"""


def main() -> dict[str, float]:
    from tests.support.servers import app_env, start_gunicorn, start_redis, start_worker

    tmp = Path(tempfile.mkdtemp(prefix="po-bench-engine-"))
    configs = tmp / "configs" / "bench" / "noop"
    configs.mkdir(parents=True)
    (configs / "noop3.yml").write_text(PIPELINE)
    redis = start_redis()
    env = app_env(
        tmp,
        f"sqlite:///{tmp / 'meta.db'}",
        redis.url,
        tmp / "configs",
        f"duckdb:///{tmp / 'wh.duckdb'}",
    )
    os.environ.update(env)
    servers = [redis]
    try:
        import httpx
        from celery import chain

        from pipeline.bootstrap import build_services
        from pipeline.queue import CeleryDispatcher
        from pipeline.settings import Settings
        from pipeline.storage.db import upgrade
        from pipeline.storage.state import TERMINAL
        from tests.bench.bench_tasks import noop

        settings = Settings.from_env()
        upgrade(settings.database_url)
        svc = build_services(settings, CeleryDispatcher())
        key = svc.orgs.create("bench")
        worker = start_worker(
            env,
            concurrency=2,
            name="bench",
            log_dir=tmp,
            extra_args=["-I", "tests.bench.bench_tasks"],
        )
        servers.append(worker)
        web = start_gunicorn(env, workers=2, log_dir=tmp)
        servers.append(web)

        def raw_once() -> float:
            t0 = time.perf_counter()
            chain(noop.si(), noop.si(), noop.si()).apply_async().get(timeout=30)
            return time.perf_counter() - t0

        http = httpx.Client(base_url=web.url, headers={"X-API-Key": key}, timeout=30)
        day = [0]

        def engine_once() -> float:
            day[0] += 1
            start = f"2025-{1 + day[0] // 28:02d}-{1 + day[0] % 28:02d}"
            t0 = time.perf_counter()
            resp = http.post(
                "/pipelines/run/bench/bench/noop/noop3",
                json={"start_date": start, "end_date": start},
            )
            assert resp.status_code == 202, resp.text
            run_id = resp.json()["run_id"]
            while True:
                run = svc.store.get_run(run_id)
                if run.status in TERMINAL:
                    break
                time.sleep(0.002)
            assert run.status == "completed", run.error_message
            return time.perf_counter() - t0

        for _ in range(3):  # warm both paths
            raw_once()
            engine_once()
        raw, engine = [], []
        for i in range(RUNS):  # interleave so drift hits both sides alike
            if i % 2:
                raw.append(raw_once())
                engine.append(engine_once())
            else:
                engine.append(engine_once())
                raw.append(raw_once())
        http.close()
    finally:
        for server in reversed(servers):
            server.stop()
    out = {
        "raw_p50_ms": statistics.median(raw) * 1000,
        "raw_p95_ms": pct(raw, 0.95) * 1000,
        "engine_p50_ms": statistics.median(engine) * 1000,
        "engine_p95_ms": pct(engine, 0.95) * 1000,
    }
    out["ratio_p50"] = out["engine_p50_ms"] / out["raw_p50_ms"]
    out["ratio_p95"] = out["engine_p95_ms"] / out["raw_p95_ms"]
    print(f"engine overhead, 3-step no-op pipeline, {RUNS} runs each (SQLite metadata DB)")
    for label, prefix in (("raw Celery chain of 3", "raw"), ("API + worker pipeline", "engine")):
        p50, p95 = out[f"{prefix}_p50_ms"], out[f"{prefix}_p95_ms"]
        print(f"  {label:<22}: p50 {p50:7.1f} ms  p95 {p95:7.1f} ms")
    ratios = f"p50 {out['ratio_p50']:.2f}x  p95 {out['ratio_p95']:.2f}x"
    print(f"  {'ratio':<22}: {ratios}  (target <= 2)")
    return out


if __name__ == "__main__":
    main()
