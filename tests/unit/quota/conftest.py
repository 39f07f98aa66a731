"""Fixtures for the quota tests: a migrated SQLite metadata DB, a clock moved by hand and
an in-memory Redis that runs the Lua scripts (fakeredis with lupa).

No `__init__.py` here on purpose: it would make this folder a package named `quota`
and shadow the real one. Helpers are fixtures for the same reason.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:  # so plain `pytest` finds the packages without an install
    sys.path.insert(0, str(ROOT))

import fakeredis  # noqa: E402
from sqlalchemy import Engine, func, select  # noqa: E402

from pipeline.storage.db import make_engine, upgrade  # noqa: E402
from quota.cache import PlanCache  # noqa: E402
from quota.gate import LedgerGate  # noqa: E402
from quota.ledger import SqlLedger  # noqa: E402
from quota.mirror import RedisMirror  # noqa: E402
from quota.models import org_quota_leases  # noqa: E402
from quota.plans import DatabasePlanSource, Plan, PlanDefaults  # noqa: E402
from tests.support.doubles import ManualClock as FakeClock  # noqa: E402


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    upgrade(url)
    return make_engine(url)


@pytest.fixture
def redis_server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


@pytest.fixture
def redis_client(redis_server: fakeredis.FakeServer) -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis(server=redis_server, decode_responses=True)


@pytest.fixture
def plan() -> Callable[..., Plan]:
    def _plan(
        org: str = "acme",
        daily: int = 100,
        monthly: int = 1000,
        concurrent: int = 5,
        status: str = "ACTIVE",
    ) -> Plan:
        return Plan(org, status, daily, monthly, concurrent, source="database")

    return _plan


@pytest.fixture
def make_gate(
    engine: Engine, clock: FakeClock, redis_server: fakeredis.FakeServer
) -> Callable[..., LedgerGate]:
    """make_gate(mirror=True, ttl=30, lease=600) -> a LedgerGate over the shared DB and Redis.

    Two gates from this factory behave like two processes: same database, same Redis,
    separate plan caches and circuit breakers.
    """

    def _make(mirror: bool = True, ttl: float = 30, lease: float = 600, **kw: Any) -> LedgerGate:
        defaults = PlanDefaults(**kw)
        source = DatabasePlanSource(engine, defaults, clock)
        redis_mirror = None
        if mirror:
            client = fakeredis.FakeRedis(server=redis_server, decode_responses=True)
            redis_mirror = RedisMirror(client, retry_seconds=0)
        cache = PlanCache(source, defaults, ttl)
        return LedgerGate(SqlLedger(engine), cache, redis_mirror, clock, timedelta(seconds=lease))

    return _make


@pytest.fixture
def active_leases(engine: Engine) -> Callable[[str], int]:
    def _count(org: str = "acme") -> int:
        query = (
            select(func.count())
            .select_from(org_quota_leases)
            .where(org_quota_leases.c.org_slug == org, org_quota_leases.c.released_at.is_(None))
        )
        with engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    return _count
