"""The quota against a real redis-server of its own and SQLite / PostgreSQL ledgers:
run-and-complete cycles across UTC midnight and month end, FLUSHALL, and redis-server
stopped and restarted."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import redis

from app import create_app
from pipeline.bootstrap import Services
from pipeline.runs.service import RunRequest
from pipeline.storage import state
from pipeline_ops_core.errors import QuotaExceededError
from quota.gate import LedgerGate
from tests.integration.conftest import ledger_services
from tests.support.doubles import ManualClock as Clock
from tests.support.records import count_runs
from tests.support.servers import Server, start_redis

ONE_STEP = """\
pipeline_id: quota_cycle
name: One noop step
provider: quota
domain: cycle
steps:
  - step_id: only
    ps_type: generic.noop
"""


@dataclass
class World:
    services: Services
    gate: LedgerGate
    redis: Server
    clock: Clock

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis.url)

    def admitted(self, ids: list[str], org: str = "acme") -> list[str]:
        out = []
        for run_id in ids:
            try:
                self.gate.reserve(org, run_id)
                out.append(run_id)
            except QuotaExceededError:
                pass
        return out

    def mirror_leases(self, org: str = "acme") -> list[str]:
        assert self.gate.mirror is not None
        return sorted(self.gate.mirror.state(org, self.clock.now)["leases"])


@pytest.fixture(params=["sqlite", "postgres"])
def world(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_server: Server
) -> Iterator[World]:
    clock = Clock(datetime(2026, 1, 29, 23, 0, tzinfo=UTC))
    services, gate, server = ledger_services(
        request.param, tmp_path, postgres_server, "quota/cycle/one", ONE_STEP, clock
    )
    gate.mirror.retry_seconds = 0.1  # come back quickly after redis-server restarts
    world = World(services, gate, server, clock)
    yield world
    world.redis.stop()  # the one running now: a test may have restarted it


def cycle(world: World, day: int) -> None:
    """Start a run, let it run, complete it: one run-and-complete cycle."""
    req = RunRequest("acme", "quota", "cycle", "one", date(2025, 6, 1), date(2025, 6, 1))
    # One date per cycle, counting back: admission refuses dates after the clock's today.
    req.start_date = req.end_date = date(2025, 6, 1) - timedelta(days=day)
    run_id = world.services.runs.start(req).run_id
    world.services.store.transition(run_id, state.RUNNING)
    assert world.services.runs.complete(run_id)


def cycles(world: World, attempts: int, first: int) -> tuple[int, QuotaExceededError | None]:
    done, refusal = 0, None
    for i in range(attempts):
        try:
            cycle(world, first + i)
            done += 1
        except QuotaExceededError as exc:
            refusal = exc
    return done, refusal


def test_daily_and_monthly_limits_across_utc_midnight_and_month_end(world: World) -> None:
    world.gate.set_limits("acme", daily=10, monthly=25, concurrent=1)
    runs_before = count_runs(world.services.store, "acme")

    assert cycles(world, 12, 0)[0] == 10  # Jan 29, from 23:00
    done, refusal = cycles(world, 1, 100)
    assert refusal is not None and (refusal.limit, refusal.current) == ("daily", 10)
    assert refusal.retry_after == 3600
    assert count_runs(world.services.store, "acme") == runs_before + 10

    world.clock.now = datetime(2026, 1, 30, 0, 0, tzinfo=UTC)  # midnight resets the day
    assert cycles(world, 12, 200)[0] == 10
    world.clock.now = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
    done, refusal = cycles(world, 12, 300)
    assert done == 5 and refusal is not None
    assert (refusal.limit, refusal.limit_value, refusal.current) == ("monthly", 25, 25)
    assert refusal.retry_after == 12 * 3600

    world.clock.now = datetime(2026, 2, 1, 0, 0, 1, tzinfo=UTC)  # the month start resets it
    assert cycles(world, 1, 400)[0] == 1
    usage = world.gate.usage("acme")
    assert (usage["usage"]["daily_runs"], usage["usage"]["monthly_runs"]) == (1, 1)
    assert usage["usage"]["succeeded_runs"] == 26
    assert (usage["mirror"]["daily_runs"], usage["mirror"]["monthly_runs"]) == (1, 1)


def test_flushall_between_reservations_gives_exact_results_after_the_rebuild(
    world: World,
) -> None:
    world.gate.set_limits("acme", concurrent=5, daily=9)
    assert world.admitted(["a", "b", "c"]) == ["a", "b", "c"]
    world.client().flushall()
    assert world.admitted(["d", "e", "f"]) == ["d", "e"]
    assert world.mirror_leases() == ["a", "b", "c", "d", "e"]

    for run_id in ("a", "b", "c"):
        world.gate.release("acme", run_id, succeeded=True)
    world.client().flushall()
    assert world.admitted(["g", "h", "i", "j"]) == ["g", "h", "i"]
    world.client().flushall()
    with pytest.raises(QuotaExceededError) as caught:
        world.gate.reserve("acme", "k")
    assert (caught.value.limit, caught.value.current) == ("concurrent", 5)
    world.gate.release("acme", "d", succeeded=True)
    world.client().flushall()
    assert world.admitted(["k"]) == ["k"]  # the 9th run of the day
    world.gate.release("acme", "e", succeeded=True)
    world.client().flushall()
    with pytest.raises(QuotaExceededError) as caught:
        world.gate.reserve("acme", "l")
    assert (caught.value.limit, caught.value.current) == ("daily", 9)
    assert world.mirror_leases() == ["g", "h", "i", "k"]


def test_with_redis_server_stopped_the_ledger_alone_is_exact_and_health_says_degraded(
    world: World,
) -> None:
    world.gate.set_limits("acme", concurrent=3)
    assert world.admitted(["a", "b"]) == ["a", "b"]
    port = world.redis.port
    world.redis.stop()

    assert world.admitted(["c", "d"]) == ["c"]
    world.gate.release("acme", "a", succeeded=True)
    assert world.admitted(["d", "e"]) == ["d"]
    health = create_app(services=world.services).test_client().get("/health")
    assert health.status_code == 200 and health.get_json()["status"] == "degraded"
    assert (
        "degraded: quota is enforced by the SQL ledger alone"
        in health.get_json()["checks"]["redis"]
    )
    assert world.gate.health().startswith("degraded: redis unavailable")

    world.redis = start_redis(port)  # restarted empty, as after a crash
    time.sleep(0.2)  # the breaker's retry interval
    assert world.admitted(["e", "f"]) == []
    world.gate.release("acme", "b", succeeded=False)
    assert world.admitted(["e", "f"]) == ["e"]
    assert world.mirror_leases() == ["c", "d", "e"]
    usage = world.gate.usage("acme")["usage"]
    assert (usage["concurrent_running"], usage["succeeded_runs"], usage["failed_runs"]) == (3, 1, 1)
