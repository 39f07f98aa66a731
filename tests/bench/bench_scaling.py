"""Chord fan-in, API `POST /run` against a bare `apply_async`, and how time grows with work.

- chord fan-in: one run of 50 parallel no-op steps plus a fan-in step, against 50 runs of a
  single no-op step submitted together (same API, same worker with 2 processes);
- API: `POST /run` (HTTP round trip to 202) against a bare `apply_async` of the same canvas
  (pipeline.queue.build_canvas of the same 3-step plan), no worker consuming;
- scaling: pipelines of 1, 10, 50 and 200 chained steps, of 1, 10 and 50 parallel steps
  (+ a fan-in), 1, 10 and 100 single-step runs in flight at once; admission with 1, 100
  and 1,000 orgs holding runs; write_partition of 10k, 100k and 1M
  rows; history queries (`SqlRunStore.list_runs`, one page of 50) with 1k, 10k and 100k runs in
  a SQLite metadata DB. Each is printed as a ratio to the smallest.

The Celery parts run in a child process so the Celery app is configured for this
benchmark's own redis-server. Figures, not assertions.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.common import pct  # noqa: E402 - needs the sys.path entry above

API_REQUESTS = int(os.environ.get("BENCH_API_REQUESTS", "200"))
REPEATS = 3
HISTORY_SIZES = (1_000, 10_000, 100_000)
HISTORY_QUERIES = 200
WRITE_SIZES = (10_000, 100_000, 1_000_000)
STEP_COUNTS = (1, 10, 50, 200)
FAN_COUNTS = (1, 10, 50)
IN_FLIGHT = (1, 10, 100)
ORG_COUNTS = (1, 100, 1_000)
RUNS_PER_ORG = 20
ADMISSIONS = 200


def _pipeline(pipeline_id: str, name: str, steps: list[str]) -> str:
    head = [f"pipeline_id: {pipeline_id}", f"name: {name}", "provider: bench", "domain: scale"]
    return "\n".join([*head, "steps:", *steps]) + "\n"


def chain_pipeline(n: int) -> str:
    steps = []
    for i in range(n):
        dep = f", depends_on: [s{i - 1}]" if i else ""
        steps.append(f"  - {{step_id: s{i}, ps_type: generic.noop{dep}}}")
    return _pipeline(f"bench_chain{n}", f"{n} chained no-op steps", steps)


def fan_pipeline(n: int) -> str:
    steps = [f"  - {{step_id: p{i}, ps_type: generic.noop}}" for i in range(n)]
    deps = ", ".join(f"p{i}" for i in range(n))
    steps.append(f"  - {{step_id: join, ps_type: generic.noop, depends_on: [{deps}]}}")
    return _pipeline(f"bench_fan{n}", f"{n} parallel no-op steps and a fan-in", steps)


# -- the Celery parts, in a child process ---------------------------------------------------


def _stack(tmp: Path, with_worker: bool) -> tuple[Any, Any, str, list[Any]]:
    from tests.support.servers import app_env, start_gunicorn, start_redis, start_worker

    configs = tmp / "configs" / "bench" / "scale"
    configs.mkdir(parents=True)
    for n in STEP_COUNTS:
        (configs / f"chain{n}.yml").write_text(chain_pipeline(n))
    for n in FAN_COUNTS:
        (configs / f"fan{n}.yml").write_text(fan_pipeline(n))
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
    from pipeline.bootstrap import build_services
    from pipeline.queue import CeleryDispatcher
    from pipeline.settings import Settings
    from pipeline.storage.db import upgrade

    settings = Settings.from_env()
    upgrade(settings.database_url)
    svc = build_services(settings, CeleryDispatcher())
    key = svc.orgs.create("bench")
    svc.gate.set_limits("bench", concurrent=100_000, daily=1_000_000, monthly=10_000_000)
    if with_worker:
        servers.append(start_worker(env, concurrency=2, name="bscale", log_dir=tmp))
    servers.append(start_gunicorn(env, workers=2, log_dir=tmp))
    return svc, servers[-1], key, servers


def _days() -> Any:
    day = date(2000, 1, 1)
    while True:
        day += timedelta(days=1)
        yield day.isoformat()


def child() -> dict[str, float]:
    import httpx

    out: dict[str, float] = {}
    days = _days()

    # 1. POST /run against a bare apply_async of the same canvas; nothing consumes.
    tmp = Path(tempfile.mkdtemp(prefix="po-bench-api-"))
    svc, web, key, servers = _stack(tmp, with_worker=False)
    try:
        from pipeline.queue import build_canvas

        http = httpx.Client(base_url=web.url, headers={"X-API-Key": key}, timeout=30)
        plan: dict[str, Any] | None = None
        api, bare = [], []
        for i in range(API_REQUESTS + 10):
            day = next(days)
            t0 = time.perf_counter()
            resp = http.post(
                "/pipelines/run/bench/bench/scale/chain1", json={"start_date": day, "end_date": day}
            )
            elapsed = time.perf_counter() - t0
            assert resp.status_code == 202, resp.text
            if plan is None:
                plan = svc.store.get_run(resp.json()["run_id"]).plan
            t0 = time.perf_counter()
            build_canvas(str(uuid.uuid4()), plan).apply_async()
            if i >= 10:  # warm-up
                api.append(elapsed)
                bare.append(time.perf_counter() - t0)
        http.close()
        out.update(
            api_post_p50_ms=statistics.median(api) * 1000,
            api_post_p95_ms=pct(api, 0.95) * 1000,
            apply_async_p50_ms=statistics.median(bare) * 1000,
            apply_async_p95_ms=pct(bare, 0.95) * 1000,
        )
    finally:
        for server in reversed(servers):
            server.stop()

    # 2. Fan-in and chains of steps, with a worker of 2 processes.
    tmp = Path(tempfile.mkdtemp(prefix="po-bench-steps-"))
    svc, web, key, servers = _stack(tmp, with_worker=True)
    try:
        from pipeline.storage.state import TERMINAL

        http = httpx.Client(base_url=web.url, headers={"X-API-Key": key}, timeout=30)

        def post(name: str) -> str:
            day = next(days)
            resp = http.post(
                f"/pipelines/run/bench/bench/scale/{name}",
                json={"start_date": day, "end_date": day},
            )
            assert resp.status_code == 202, resp.text
            return resp.json()["run_id"]

        def wait(run_ids: list[str]) -> None:
            pending = set(run_ids)
            deadline = time.monotonic() + 300
            while pending:
                assert time.monotonic() < deadline, f"runs did not finish: {pending}"
                for run_id in list(pending):
                    run = svc.store.get_run(run_id)
                    if run.status in TERMINAL:
                        assert run.status == "completed", run.error_message
                        pending.discard(run_id)
                time.sleep(0.01)

        def timed(names: list[str]) -> float:
            t0 = time.perf_counter()
            wait([post(name) for name in names])
            return time.perf_counter() - t0

        timed(["chain1", "chain1"])  # warm-up
        fan, singles = [], []
        for _ in range(REPEATS):
            fan.append(timed(["fan50"]))
            singles.append(timed(["chain1"] * 50))
        out["fan50_s"] = statistics.median(fan)
        out["singles50_s"] = statistics.median(singles)
        for n in STEP_COUNTS:
            out[f"chain{n}_s"] = statistics.median(timed([f"chain{n}"]) for _ in range(REPEATS))
        for n in FAN_COUNTS:
            out[f"fan{n}_s"] = statistics.median(timed([f"fan{n}"]) for _ in range(REPEATS))
        for n in IN_FLIGHT:  # n single-step runs in flight at once, until all complete
            out[f"inflight{n}_s"] = statistics.median(timed(["chain1"] * n) for _ in range(REPEATS))
        http.close()
    finally:
        for server in reversed(servers):
            server.stop()
    return out


# -- in this process: write_partition and history -----------------------------------------


def write_scaling(known: dict[int, float]) -> dict[int, float]:
    from tests.bench import bench_write_partition as bw
    from warehouse.duckdb import DuckDBWarehouse

    times = dict(known)
    for n in WRITE_SIZES:
        if n in times:
            continue
        rows = bw.make_rows(n)
        runs = []
        for _ in range(REPEATS):
            with tempfile.TemporaryDirectory() as tmp:
                wh = DuckDBWarehouse(Path(tmp) / "wh.duckdb")
                wh.ensure_table(bw.TABLE, rows.schema)
                runs.append(bw.timed_write(wh, rows))
        times[n] = statistics.median(runs)
    return times


def history_scaling() -> dict[int, dict[str, float]]:
    from sqlalchemy import insert

    from pipeline.bootstrap import build_services
    from pipeline.settings import Settings
    from pipeline.storage.db import upgrade
    from pipeline.storage.tables import pipeline_runs

    class NoDispatch:
        def check(self) -> None:
            return None

        def enqueue(self, run_id: str, plan: dict[str, Any]) -> None:
            return None

        def revoke(self, run_id: str, plan: dict[str, Any]) -> None:
            return None

    out: dict[int, dict[str, float]] = {}
    for size in HISTORY_SIZES:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings.from_env(
                {
                    **os.environ,
                    "DATABASE_URL": f"sqlite:///{Path(tmp) / 'meta.db'}",
                    "PIPELINE_OPS_VAR_DIR": tmp,
                    "EAGER": "1",
                    "PIPELINE_OPS_EAGER": "1",
                }
            )
            upgrade(settings.database_url)
            svc = build_services(settings, NoDispatch())
            svc.orgs.create("acme")
            svc.orgs.create("other")
            base = datetime(2025, 1, 1, tzinfo=UTC)
            statuses = ("completed", "completed", "completed", "failed")
            rows = [
                {
                    "run_id": str(uuid.UUID(int=i)),
                    "org_slug": "acme" if i % 4 else "other",
                    "pipeline_id": f"p{i % 10}",
                    "pipeline_path": "bench/scale/chain1",
                    "status": statuses[i % 4],
                    "idempotency_key": f"k{i}",
                    "trigger": "api",
                    "credential_id": "default",
                    "start_date": date(2025, 1, 1),
                    "end_date": date(2025, 1, 1),
                    "params": {},
                    "created_at": base + timedelta(seconds=i),
                    "ended_at": base + timedelta(seconds=i + 1),
                }
                for i in range(size)
            ]
            with svc.store.engine.begin() as conn:
                for start in range(0, size, 10_000):
                    conn.execute(insert(pipeline_runs), rows[start : start + 10_000])
            deep_cursor = None
            page = svc.store.list_runs("acme", limit=50)
            for _ in range(min(20, size // 200)):  # a cursor some pages deep
                last = page[-1]
                deep_cursor = (last.created_at, last.run_id)
                page = svc.store.list_runs("acme", limit=50, cursor=deep_cursor)
            timings: list[float] = []
            for i in range(HISTORY_QUERIES):
                kind = i % 3
                t0 = time.perf_counter()
                if kind == 0:
                    got = svc.store.list_runs("acme", limit=51)
                elif kind == 1:
                    got = svc.store.list_runs("acme", limit=51, cursor=deep_cursor)
                else:
                    got = svc.store.list_runs("acme", limit=51, status="failed")
                timings.append(time.perf_counter() - t0)
                assert got, "history returned nothing"
            out[size] = {
                "p50_ms": statistics.median(timings) * 1000,
                "p95_ms": pct(timings, 0.95) * 1000,
            }
            svc.store.engine.dispose()
    return out


def orgs_scaling() -> dict[int, dict[str, float]]:
    """Admission (`RunService.start`: run row, quota ledger and mirror, transitions) with
    1 / 100 / 1,000 orgs, each with RUNS_PER_ORG finished runs, in a SQLite metadata DB."""
    import random

    from sqlalchemy import insert

    from pipeline.bootstrap import build_services
    from pipeline.runs.service import RunRequest
    from pipeline.settings import Settings
    from pipeline.storage.db import upgrade
    from pipeline.storage.tables import pipeline_runs
    from tests.support.doubles import NullDispatcher
    from tests.support.servers import app_env, start_redis

    out: dict[int, dict[str, float]] = {}
    redis = start_redis()
    try:
        for count in ORG_COUNTS:
            with tempfile.TemporaryDirectory() as folder:
                tmp = Path(folder)
                configs = tmp / "configs" / "bench" / "scale"
                configs.mkdir(parents=True)
                (configs / "chain1.yml").write_text(chain_pipeline(1))
                env = app_env(
                    tmp, f"sqlite:///{tmp / 'meta.db'}", redis.url, tmp / "configs",
                    f"duckdb:///{tmp / 'wh.duckdb'}",
                )  # fmt: skip
                settings = Settings.from_env({**os.environ, **env})
                upgrade(settings.database_url)
                svc = build_services(settings, NullDispatcher())
                orgs = [f"o{count}_{i:04d}" for i in range(count)]
                for org in orgs:
                    svc.orgs.create(org)
                    svc.gate.set_limits(org, concurrent=100_000, daily=1_000_000, monthly=10**7)
                base = datetime(2025, 1, 1, tzinfo=UTC)
                rows = [
                    {
                        "run_id": str(uuid.uuid4()),
                        "org_slug": org,
                        "pipeline_id": "bench_chain1",
                        "pipeline_path": "bench/scale/chain1",
                        "status": "completed",
                        "idempotency_key": f"{org}-{i}",
                        "trigger": "api",
                        "credential_id": "default",
                        "start_date": date(2025, 1, 1),
                        "end_date": date(2025, 1, 1),
                        "params": {},
                        "created_at": base + timedelta(seconds=i),
                        "ended_at": base + timedelta(seconds=i + 1),
                    }
                    for org in orgs
                    for i in range(RUNS_PER_ORG)
                ]
                with svc.store.engine.begin() as conn:
                    for start in range(0, len(rows), 10_000):
                        conn.execute(insert(pipeline_runs), rows[start : start + 10_000])
                pick = random.Random(count)
                timings: list[float] = []
                for i in range(ADMISSIONS + 10):
                    day = date(2001, 1, 1) + timedelta(days=i)
                    request = RunRequest(pick.choice(orgs), "bench", "scale", "chain1", day, day)
                    t0 = time.perf_counter()
                    svc.runs.start(request)
                    if i >= 10:  # warm-up
                        timings.append(time.perf_counter() - t0)
                out[count] = {
                    "p50_ms": statistics.median(timings) * 1000,
                    "p95_ms": pct(timings, 0.95) * 1000,
                }
                svc.store.engine.dispose()
    finally:
        redis.stop()
    return out


def shape(sizes: tuple[int, ...], times: list[float]) -> str:
    """Linear or not, from the cost per unit at the two largest sizes: the smallest size
    is mostly fixed cost (admission, the first hop), which would make anything look
    sub-linear against it."""
    (n1, t1), (n2, t2) = zip(sizes[-2:], times[-2:], strict=True)
    growth = (t2 / n2) / (t1 / n1)
    verdict = "sub-linear" if growth < 0.8 else "linear" if growth <= 1.25 else "super-linear"
    return f"{verdict} (per unit x{growth:.2f} from {n1:,} to {n2:,})"


def main(write_1m_s: float | None = None) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"bench child failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    celery = json.loads(proc.stdout.strip().splitlines()[-1])
    writes = write_scaling({1_000_000: write_1m_s} if write_1m_s else {})
    history = history_scaling()
    orgs = orgs_scaling()
    out: dict[str, Any] = {**celery, "write_s": writes, "history": history, "orgs": orgs}

    print("chord fan-in (API + worker, 2 processes)")
    ratio = celery["fan50_s"] / celery["singles50_s"]
    print(f"  50 x a single-step run, submitted together: {celery['singles50_s']:.3f}s")
    print(f"  one run, 50 parallel steps + fan-in:        {celery['fan50_s']:.3f}s  ({ratio:.2f}x)")
    print(f"API, {API_REQUESTS} requests (1-step pipeline)")
    print(
        f"  bare apply_async of the canvas: p50 {celery['apply_async_p50_ms']:.2f} ms"
        f"  p95 {celery['apply_async_p95_ms']:.2f} ms"
    )
    print(
        f"  POST /run (HTTP, to 202):       p50 {celery['api_post_p50_ms']:.2f} ms"
        f"  p95 {celery['api_post_p95_ms']:.2f} ms"
        f"  ({celery['api_post_p50_ms'] / celery['apply_async_p50_ms']:.1f}x at p50)"
    )
    print("scaling (ratio to the smallest)")
    for label, prefix, sizes in (
        ("chained steps in one run", "chain", STEP_COUNTS),
        ("parallel steps + fan-in in one run", "fan", FAN_COUNTS),
        ("single-step runs in flight at once", "inflight", IN_FLIGHT),
    ):
        first = celery[f"{prefix}{sizes[0]}_s"]
        for n in sizes:
            t = celery[f"{prefix}{n}_s"]
            per_unit = (t / n) / (first / sizes[0])
            times = [celery[f"{prefix}{m}_s"] for m in sizes]
            print(
                f"  {n:>4} {label}: {t:8.3f}s  {t / first:7.2f}x  per unit {per_unit:.2f}x"
                f"  {shape(sizes, times) if n == sizes[-1] else ''}"
            )
    small = WRITE_SIZES[0]
    for n in WRITE_SIZES:
        per_row = (writes[n] / n) / (writes[small] / small)
        print(
            f"  write_partition {n:>9,} rows: {writes[n]:8.3f}s  {writes[n] / writes[small]:7.2f}x"
            f"  per row {per_row:.2f}x"
        )
    o0 = ORG_COUNTS[0]
    for n in ORG_COUNTS:
        o = orgs[n]
        ratio = o["p95_ms"] / orgs[o0]["p95_ms"]
        verdict = ("flat" if ratio <= 1.5 else "grows") if n == ORG_COUNTS[-1] else ""
        print(
            f"  admission with {n:>5,} orgs ({RUNS_PER_ORG} runs each): p50 {o['p50_ms']:6.2f} ms"
            f"  p95 {o['p95_ms']:6.2f} ms  {ratio:5.2f}x  {verdict}"
        )
    hs = HISTORY_SIZES[0]
    for n in HISTORY_SIZES:
        h = history[n]
        print(
            f"  history page with {n:>7,} runs: p50 {h['p50_ms']:6.2f} ms"
            f"  p95 {h['p95_ms']:6.2f} ms"
            f"  {h['p95_ms'] / history[hs]['p95_ms']:5.2f}x  (target p95 < 50 ms at 100k)"
        )
    return out


if __name__ == "__main__":
    if "--child" in sys.argv:
        result = child()
        print(json.dumps(result))
    else:
        main()
