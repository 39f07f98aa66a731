"""`make load`: 50 orgs with mixed limits send 2,000 run requests within 60 s.

Loopback only, bounded: its own redis-server, PostgreSQL (metadata DB), gunicorn with 2
workers and a Celery prefork worker with 2 processes, all stopped at the end.

Asserts no 5xx; admissions exactly as each org's limits allow (each org sends 40 requests;
its daily and monthly limits, smaller or larger than 40, decide how many are admitted, the
concurrent limit is never the binding one); every admitted run ends completed or failed;
no leaked quota slot. Prints p50/p95/p99 API latency and completed runs per second.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.common import pct  # noqa: E402 - needs the sys.path entry above

ORGS = 50
REQUESTS = 2000
PER_ORG = REQUESTS // ORGS
WINDOW_S = 60.0
CLIENTS = 16
DRAIN_TIMEOUT_S = 240.0

PIPELINE = """\
pipeline_id: load_noop
name: One no-op step
provider: load
domain: noop
steps:
  - step_id: only
    ps_type: generic.noop
"""


def limits_for(i: int) -> dict[str, int]:
    """Mixed limits: daily 10..50 against 40 requests, some monthly limits below daily."""
    daily = 10 + (i % 5) * 10
    monthly = 15 if i % 7 == 0 else 10_000
    return {"daily": daily, "monthly": monthly, "concurrent": max(daily, 1)}


def expected_admissions(i: int) -> int:
    lim = limits_for(i)
    return min(PER_ORG, lim["daily"], lim["monthly"])


class NoDispatch:
    def check(self) -> None:
        return None

    def enqueue(self, run_id: str, plan: dict[str, Any]) -> None:
        raise AssertionError("runs are started through gunicorn")

    def revoke(self, run_id: str, plan: dict[str, Any]) -> None:
        return None


def wait_clear_of_midnight() -> None:
    # Daily counters reset at UTC midnight: do not straddle it.
    now = datetime.now(UTC)
    to_midnight = (now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)) - now
    if to_midnight < timedelta(minutes=6):
        time.sleep(to_midnight.total_seconds() + 2)


def main() -> dict[str, float]:
    import requests

    from pipeline.bootstrap import build_services
    from pipeline.settings import Settings
    from pipeline.storage.db import upgrade
    from pipeline.storage.state import TERMINAL
    from tests.support.servers import (
        app_env,
        create_pg_database,
        start_gunicorn,
        start_postgres,
        start_redis,
        start_worker,
    )

    wait_clear_of_midnight()
    tmp = Path(tempfile.mkdtemp(prefix="po-load-"))
    (tmp / "configs" / "load" / "noop").mkdir(parents=True)
    (tmp / "configs" / "load" / "noop" / "one.yml").write_text(PIPELINE)
    servers = []
    try:
        redis = start_redis()
        servers.append(redis)
        pg = start_postgres()
        servers.append(pg)
        env = app_env(
            tmp,
            create_pg_database(pg, "load"),
            redis.url,
            tmp / "configs",
            f"duckdb:///{tmp / 'wh.duckdb'}",
        )
        settings = Settings.from_env({**os.environ, **env})
        upgrade(settings.database_url)
        services = build_services(settings, NoDispatch())
        keys: dict[str, str] = {}
        for i in range(ORGS):
            org = f"org_{i:02d}"
            keys[org] = services.orgs.create(org)
            services.gate.set_limits(org, **limits_for(i))
        servers.append(start_worker(env, concurrency=2, name="wload", log_dir=tmp))
        web = start_gunicorn(env, workers=2, log_dir=tmp)
        servers.append(web)

        # Request j goes to org j % 50, for its own day (no two requests of a run key).
        jobs = [(f"org_{j % ORGS:02d}", j) for j in range(REQUESTS)]
        latencies: list[float] = []
        statuses: dict[str, list[int]] = {org: [] for org in keys}
        admitted: list[str] = []
        lock = threading.Lock()
        local = threading.local()

        def send(job: tuple[str, int]) -> None:
            org, j = job
            session = getattr(local, "session", None)
            if session is None:
                session = local.session = requests.Session()
            day = (date(2020, 1, 1) + timedelta(days=j)).isoformat()
            t0 = time.perf_counter()
            reply = session.post(
                f"{web.url}/pipelines/run/{org}/load/noop/one",
                json={"start_date": day, "end_date": day},
                headers={"X-API-Key": keys[org]},
                timeout=30,
            )
            elapsed = time.perf_counter() - t0
            with lock:
                latencies.append(elapsed * 1000)
                statuses[org].append(reply.status_code)
                if reply.status_code == 202:
                    admitted.append(reply.json()["run_id"])

        started = time.perf_counter()
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(send, jobs))
        sent_s = time.perf_counter() - started

        pending = set(admitted)
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while pending and time.monotonic() < deadline:
            for run_id in list(pending):
                run = services.store.get_run(run_id)
                if run and run.status in TERMINAL:
                    pending.discard(run_id)
            time.sleep(0.5)
        drained_s = time.perf_counter() - started

        failures: list[str] = []
        all_codes = [c for codes in statuses.values() for c in codes]
        server_errors = [c for c in all_codes if c >= 500]
        if server_errors:
            failures.append(f"{len(server_errors)} 5xx replies: {sorted(set(server_errors))}")
        other = sorted({c for c in all_codes if c not in (202, 429)})
        if other:
            failures.append(f"unexpected statuses {other}")
        if sent_s > WINDOW_S:
            failures.append(f"{REQUESTS} requests took {sent_s:.1f}s (> {WINDOW_S:.0f}s)")
        for i, org in enumerate(keys):
            got = statuses[org].count(202)
            if got != expected_admissions(i):
                failures.append(f"{org}: {got} admitted, limits allow {expected_admissions(i)}")
        if pending:
            failures.append(f"{len(pending)} admitted runs did not finish in {DRAIN_TIMEOUT_S}s")
        ended = {"completed": 0, "failed": 0}
        for run_id in admitted:
            status = services.store.get_run(run_id).status
            if status not in ended:
                failures.append(f"run {run_id} ended {status}")
            else:
                ended[status] += 1
        leaked = {}
        for org in keys:
            usage = services.gate.usage(org)
            running = usage["usage"]["concurrent_running"]
            leases = len(usage["mirror"].get("leases", []))
            if running or leases:
                leaked[org] = (running, leases)
        if leaked:
            failures.append(f"leaked slots (ledger, mirror): {leaked}")

        figures = {
            "requests": float(REQUESTS),
            "admitted": float(len(admitted)),
            "completed": float(ended["completed"]),
            "failed": float(ended["failed"]),
            "send_s": sent_s,
            "requests_per_s": REQUESTS / sent_s,
            "api_p50_ms": pct(latencies, 0.50),
            "api_p95_ms": pct(latencies, 0.95),
            "api_p99_ms": pct(latencies, 0.99),
            "drain_s": drained_s,
            "runs_completed_per_s": ended["completed"] / drained_s,
        }
        print(f"load: {ORGS} orgs, {REQUESTS} POST /run from {CLIENTS} clients")
        print(f"  sent in {sent_s:.1f}s ({figures['requests_per_s']:.0f} req/s)")
        print(
            f"  admitted {len(admitted)} (expected {sum(map(expected_admissions, range(ORGS)))}),"
            f" refused {all_codes.count(429)} with 429, 5xx {len(server_errors)}"
        )
        print(
            f"  API latency p50 {figures['api_p50_ms']:.1f} ms, p95 {figures['api_p95_ms']:.1f}"
            f" ms, p99 {figures['api_p99_ms']:.1f} ms"
        )
        print(
            f"  runs: {ended['completed']} completed, {ended['failed']} failed in {drained_s:.1f}s"
            f" ({figures['runs_completed_per_s']:.1f} runs/s completed);"
            f" leaked slots: {len(leaked)}"
        )
        if failures:
            print("FAILED:\n  " + "\n  ".join(failures[:30]))
            for server in servers[2:]:
                print(f"--- {server.name} log ---\n{server.log()}")
            raise SystemExit(1)
        print("OK")
        return figures
    finally:
        for server in reversed(servers):
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
