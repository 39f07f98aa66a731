"""A run reserved before UTC midnight / month end and finished after it: counters stay exact.

A controlled clock drives the quota gate and the run store, as in test_quota_redis.py,
over a real redis-server mirror and a SQLite or PostgreSQL ledger.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline.bootstrap import Services
from pipeline.runs.service import RunRequest
from pipeline.storage import state
from pipeline_ops_core.errors import QuotaExceededError
from quota.gate import LedgerGate
from tests.integration.conftest import ledger_services
from tests.support.doubles import ManualClock as Clock
from tests.support.servers import Server

ONE_STEP = """\
pipeline_id: fault_periods
name: One noop step
provider: fault
domain: periods
steps:
  - step_id: only
    ps_type: generic.noop
"""


@dataclass
class World:
    services: Services
    gate: LedgerGate
    clock: Clock
    days: int = 0

    def start(self) -> str:
        self.days += 1
        day = date(2025, 1, 1).replace(day=1 + self.days % 28, month=1 + self.days // 28)
        req = RunRequest("acme", "fault", "periods", "one", day, day)
        run_id = self.services.runs.start(req).run_id
        self.services.store.transition(run_id, state.RUNNING)
        return run_id

    def usage(self) -> dict[str, Any]:
        return self.gate.usage("acme")


@pytest.fixture(params=["sqlite", "postgres"])
def world(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_server: Server
) -> Iterator[World]:
    clock = Clock(datetime(2026, 1, 31, 23, 59, 0, tzinfo=UTC))
    services, gate, server = ledger_services(
        request.param, tmp_path, postgres_server, "fault/periods/one", ONE_STEP, clock
    )
    yield World(services, gate, clock)
    server.stop()


def counters(usage: dict[str, Any], side: str = "usage") -> tuple[int, int, int]:
    u = usage[side]
    running = len(u["leases"]) if side == "mirror" else u["concurrent_running"]
    return u["daily_runs"], u["monthly_runs"], running


def test_runs_spanning_midnight_and_month_end_count_once_in_the_period_they_started(
    world: World,
) -> None:
    world.gate.set_limits("acme", daily=2, monthly=3, concurrent=2)
    # Jan 31, 23:59: two runs start; the second is still running at midnight.
    first = world.start()
    spanning = world.start()
    assert world.services.runs.complete(first)
    assert counters(world.usage()) == (2, 2, 1)
    with pytest.raises(QuotaExceededError) as caught:
        world.start()
    assert caught.value.limit in ("daily", "concurrent")

    # Feb 1, 00:00:01: a new day and a new month while `spanning` is still running.
    world.clock.now = datetime(2026, 2, 1, 0, 0, 1, tzinfo=UTC)
    assert counters(world.usage()) == (0, 0, 1)
    assert counters(world.usage(), "mirror") == (0, 0, 1)
    feb_first = world.start()  # admitted: concurrent 2 allows it, Feb counters start at 0
    assert counters(world.usage()) == (1, 1, 2)
    with pytest.raises(QuotaExceededError) as caught:
        world.start()
    assert (caught.value.limit, caught.value.current) == ("concurrent", 2)

    # The spanning run finishes after midnight: it frees its slot, it is not counted again.
    assert world.services.runs.complete(spanning)
    assert counters(world.usage()) == (1, 1, 1)
    second_feb = world.start()
    assert counters(world.usage()) == (2, 2, 2)
    for run_id in (feb_first, second_feb):
        assert world.services.runs.complete(run_id)
    with pytest.raises(QuotaExceededError) as caught:
        world.start()
    assert (caught.value.limit, caught.value.current) == ("daily", 2)
    usage = world.usage()
    assert counters(usage) == (2, 2, 0)
    assert counters(usage, "mirror") == (2, 2, 0)
    assert usage["usage"]["succeeded_runs"] == 4

    # Feb 2: the day resets; the month (limit 3) allows exactly one more run.
    world.clock.now = datetime(2026, 2, 2, 0, 0, 0, tzinfo=UTC)
    last = world.start()
    assert world.services.runs.complete(last)
    with pytest.raises(QuotaExceededError) as caught:
        world.start()
    assert (caught.value.limit, caught.value.current) == ("monthly", 3)
    assert counters(world.usage()) == (1, 3, 0)
