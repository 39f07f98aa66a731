"""The Lua scripts of the Redis mirror, run by fakeredis (lupa)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import fakeredis
import pytest

from quota.mirror import MirrorUnavailable, RedisMirror
from quota.plans import Plan
from quota.usage import Lease, Usage

LEASE = timedelta(minutes=10)


@pytest.fixture
def mirror(redis_client: fakeredis.FakeRedis, clock) -> RedisMirror:
    m = RedisMirror(redis_client, retry_seconds=60)
    m.rebuild(
        Usage("acme", clock.now.date(), clock.now.date().replace(day=1), 0, 0, 0), clock.now, True
    )
    return m


def kinds(mirror: RedisMirror, plan: Plan, ids: list[str], now: datetime) -> list[str]:
    return [mirror.reserve(plan, i, now, now + LEASE).kind for i in ids]


def test_reserve_counts_and_names_the_limit_it_hit(
    mirror: RedisMirror, plan: Callable[..., Plan], clock
) -> None:
    p = plan(daily=3, concurrent=2)
    assert kinds(mirror, p, ["a", "b"], clock.now) == ["ok", "ok"]
    refused = mirror.reserve(p, "c", clock.now, clock.now + LEASE)
    assert (refused.kind, refused.limit, refused.limit_value, refused.current) == (
        "exceeded",
        "concurrent",
        2,
        2,
    )
    assert mirror.release("acme", "a", clock.now) is True
    assert mirror.release("acme", "a", clock.now) is False  # idempotent
    assert kinds(mirror, p, ["c"], clock.now) == ["ok"]
    mirror.release("acme", "b", clock.now)
    refused = mirror.reserve(p, "d", clock.now, clock.now + LEASE)
    assert (refused.limit, refused.current) == ("daily", 3)
    # Asking again for a run that holds a lease is not a second reservation.
    assert kinds(mirror, plan(daily=3, concurrent=2), ["c"], clock.now) == ["ok"]
    assert mirror.state("acme", clock.now)["daily_runs"] == 3


def test_expired_leases_are_dropped_before_every_check(
    mirror: RedisMirror, plan: Callable[..., Plan], clock
) -> None:
    p = plan(concurrent=1)
    assert kinds(mirror, p, ["old"], clock.now) == ["ok"]
    assert kinds(mirror, p, ["new"], clock.now) == ["exceeded"]
    later = clock.now + LEASE
    assert kinds(mirror, p, ["new"], later) == ["ok"]
    assert mirror.state("acme", later)["leases"] == ["new"]


def test_heartbeat_extends_a_live_lease_only(
    mirror: RedisMirror, plan: Callable[..., Plan], clock
) -> None:
    p = plan(concurrent=1)
    kinds(mirror, p, ["run"], clock.now)
    almost = clock.now + LEASE - timedelta(seconds=1)
    assert mirror.heartbeat("acme", "run", almost, almost + LEASE) is True
    assert kinds(mirror, p, ["other"], clock.now + LEASE) == ["exceeded"]
    gone = almost + LEASE
    assert mirror.heartbeat("acme", "run", gone, gone + LEASE) is False


def test_counters_are_per_period_and_expire_on_their_own(
    mirror: RedisMirror, redis_client: fakeredis.FakeRedis, plan: Callable[..., Plan]
) -> None:
    p = plan(daily=1, monthly=2, concurrent=5)
    evening = datetime(2026, 1, 31, 23, 0, tzinfo=UTC)
    assert kinds(mirror, p, ["jan"], evening) == ["ok"]
    _, day_key, month_key, _ = mirror.keys("acme", evening)
    assert day_key.endswith("day:2026-01-31") and month_key.endswith("month:2026-01")
    # Gone an hour after their period ends (3600 s to midnight + the margin).
    assert 0 < redis_client.ttl(day_key) <= 2 * 3600
    assert 0 < redis_client.ttl(month_key) <= 2 * 3600
    assert mirror.reserve(p, "jan2", evening, evening + LEASE).limit == "daily"
    february = datetime(2026, 2, 1, 0, 0, tzinfo=UTC)
    assert kinds(mirror, p, ["feb"], february) == ["ok"]


def test_a_missing_mirror_asks_for_a_rebuild_and_a_live_one_is_kept(
    redis_client: fakeredis.FakeRedis, plan: Callable[..., Plan], clock
) -> None:
    m = RedisMirror(redis_client)
    assert kinds(m, plan(), ["a"], clock.now) == ["rebuild"]
    usage = Usage(
        "acme",
        date(2026, 1, 5),
        date(2026, 1, 1),
        daily_runs=4,
        monthly_runs=9,
        concurrent_running=1,
        leases=[Lease("held", clock.now, clock.now + LEASE)],
    )
    assert m.rebuild(usage, clock.now, force=False) is True
    assert m.state("acme", clock.now) == {
        "ready": True,
        "leases": ["held"],
        "daily_runs": 4,
        "monthly_runs": 9,
    }
    # Another process rebuilt meanwhile: a second, unforced rebuild leaves it alone.
    assert (
        m.rebuild(Usage("acme", date(2026, 1, 5), date(2026, 1, 1), 0, 0, 0), clock.now, False)
        is False
    )
    assert m.state("acme", clock.now)["daily_runs"] == 4


def test_rollback_undoes_the_lease_and_the_counts(
    mirror: RedisMirror, plan: Callable[..., Plan], clock
) -> None:
    kinds(mirror, plan(), ["kept", "undone"], clock.now)
    assert mirror.release("acme", "undone", clock.now, undo_counts=True) is True
    assert mirror.release("acme", "undone", clock.now, undo_counts=True) is False
    state = mirror.state("acme", clock.now)
    assert (state["leases"], state["daily_runs"], state["monthly_runs"]) == (["kept"], 1, 1)


def test_an_unreachable_redis_trips_the_breaker(
    redis_server: fakeredis.FakeServer, plan: Callable[..., Plan], clock
) -> None:
    ticks = [0.0]
    m = RedisMirror(
        fakeredis.FakeRedis(server=redis_server), retry_seconds=5, monotonic=lambda: ticks[0]
    )
    redis_server.connected = False
    with pytest.raises(MirrorUnavailable):
        m.reserve(plan(), "a", clock.now, clock.now + LEASE)
    assert (m.available(), m.outages) == (False, 1)
    ticks[0] = 5.0
    redis_server.connected = True
    assert m.available() and m.ping()


def test_a_forced_rebuild_keeps_reservations_still_on_their_way_to_the_ledger(
    mirror: RedisMirror, plan: Callable[..., Plan], clock
) -> None:
    earlier = clock.now - timedelta(minutes=1)
    mirror.reserve(plan(), "ghost", earlier, earlier + LEASE)  # its process died
    kinds(mirror, plan(), ["committed", "in_flight"], clock.now)
    ledger_view = Usage(
        "acme",
        clock.now.date(),
        clock.now.date().replace(day=1),
        daily_runs=1,
        monthly_runs=1,
        concurrent_running=1,
        leases=[Lease("committed", clock.now, clock.now + LEASE)],
    )

    young_after = clock.now + LEASE - timedelta(seconds=5)
    assert mirror.rebuild(ledger_view, clock.now, force=True, young_after=young_after)

    state = mirror.state("acme", clock.now)
    assert sorted(state["leases"]) == ["committed", "in_flight"]
    assert (state["daily_runs"], state["monthly_runs"]) == (2, 2)

    # A young lease the ledger has already ended is a release the mirror missed.
    kinds(mirror, plan(), ["released_meanwhile"], clock.now)
    assert mirror.rebuild(
        ledger_view, clock.now, force=True, young_after=young_after, ended=["released_meanwhile"]
    )
    state = mirror.state("acme", clock.now)
    assert sorted(state["leases"]) == ["committed", "in_flight"]
    assert (state["daily_runs"], state["monthly_runs"]) == (2, 2)
