"""Quota throughput: reserve+release pairs through the Lua scripts against a raw INCR+DECR
loop from the same client to the same redis-server, and SQL ledger reservations on
SQLite and PostgreSQL.

Both Redis sides make two round trips per pair, so the ratio is what the scripts and
their Python wrapper cost on top of the network. Figures, not assertions.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PAIRS = int(os.environ.get("BENCH_QUOTA_PAIRS", "5000"))
SQL_RESERVATIONS = int(os.environ.get("BENCH_QUOTA_SQL", "1000"))
LEASE = timedelta(minutes=10)


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def bench_redis(url: str) -> dict[str, float]:
    from quota.mirror import RedisMirror
    from quota.plans import Plan
    from quota.usage import Usage

    mirror = RedisMirror.from_url(url)
    client = mirror.client
    plan = Plan("bench", "ACTIVE", 10**9, 10**9, 10**6)
    now = datetime.now(UTC)
    mirror.rebuild(Usage("bench", now.date(), now.date().replace(day=1), 0, 0, 0), now, True)

    def lua(n: int) -> float:
        t0 = time.perf_counter()
        for i in range(n):
            run_id = f"run-{i}"
            mirror.reserve(plan, run_id, now, now + LEASE)
            mirror.release("bench", run_id, now)
        return time.perf_counter() - t0

    def raw(n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            client.incr("bench:raw")
            client.decr("bench:raw")
        return time.perf_counter() - t0

    lua(200), raw(200)  # warm: scripts loaded, connection open
    lua_s, raw_s = 0.0, 0.0
    for _ in range(2):  # interleaved halves, so drift hits both sides alike
        raw_s += raw(PAIRS // 2)
        lua_s += lua(PAIRS // 2)
    client.close()
    return {"lua_pairs_per_s": _rate(PAIRS, lua_s), "raw_pairs_per_s": _rate(PAIRS, raw_s)}


def bench_ledger(url: str) -> dict[str, float]:
    from pipeline.storage.db import make_engine, upgrade
    from quota.ledger import SqlLedger
    from quota.plans import Plan

    upgrade(url)
    engine = make_engine(url)
    ledger = SqlLedger(engine)
    plan = Plan("bench", "ACTIVE", 10**9, 10**9, 10**9)
    now = datetime.now(UTC)
    for i in range(50):  # warm the pool and the statement caches
        ledger.reserve(plan, f"warm-{i}", now, now + LEASE, epoch=0)
    t0 = time.perf_counter()
    for i in range(SQL_RESERVATIONS):
        ledger.reserve(plan, f"r-{i}", now, now + LEASE, epoch=0)
    reserve_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(SQL_RESERVATIONS):
        ledger.release(f"r-{i}", True, now)
    release_s = time.perf_counter() - t0
    engine.dispose()
    return {
        "reservations_per_s": _rate(SQL_RESERVATIONS, reserve_s),
        "releases_per_s": _rate(SQL_RESERVATIONS, release_s),
    }


def main() -> dict[str, Any]:
    from tests.support.servers import create_pg_database, start_postgres, start_redis

    tmp = Path(tempfile.mkdtemp(prefix="po-bench-quota-"))
    servers = []
    try:
        redis_server = start_redis()
        servers.append(redis_server)
        postgres = start_postgres()
        servers.append(postgres)
        redis_figures = bench_redis(redis_server.url)
        sqlite = bench_ledger(f"sqlite:///{tmp / 'meta.db'}")
        pg = bench_ledger(create_pg_database(postgres, "bench_quota"))
    finally:
        for server in reversed(servers):
            server.stop()
    out: dict[str, Any] = {
        **redis_figures,
        "ratio": redis_figures["lua_pairs_per_s"] / redis_figures["raw_pairs_per_s"],
        "sqlite_reservations_per_s": sqlite["reservations_per_s"],
        "sqlite_releases_per_s": sqlite["releases_per_s"],
        "postgres_reservations_per_s": pg["reservations_per_s"],
        "postgres_releases_per_s": pg["releases_per_s"],
    }
    print(f"quota: {PAIRS} reserve+release pairs, {SQL_RESERVATIONS} ledger reservations")
    print(f"  {'raw INCR+DECR pairs':<34}: {out['raw_pairs_per_s']:>9.0f} /s")
    print(f"  {'Lua reserve+release pairs':<34}: {out['lua_pairs_per_s']:>9.0f} /s")
    print(f"  {'ratio (Lua / raw)':<34}: {out['ratio']:>9.2f}x  (target >= 0.5)")
    for kind in ("sqlite", "postgres"):
        print(
            f"  {'SQL ledger on ' + kind:<34}: {out[kind + '_reservations_per_s']:>9.0f} "
            f"reservations/s, {out[kind + '_releases_per_s']:.0f} releases/s"
        )
    return out


if __name__ == "__main__":
    main()
