"""The enforcing gate: plan -> Redis mirror -> SQL ledger, and how it heals the mirror."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import fakeredis
import pytest

from pipeline_ops_core.errors import QuotaExceededError, SubscriptionInactiveError
from quota.gate import LedgerGate
from quota.mirror import score


def admitted(gate: LedgerGate, ids: list[str], org: str = "acme") -> list[str]:
    out = []
    for run_id in ids:
        try:
            gate.reserve(org, run_id)
            out.append(run_id)
        except QuotaExceededError:
            pass
    return out


def mirror_state(gate: LedgerGate, clock, org: str = "acme") -> dict:
    assert gate.mirror is not None
    return gate.mirror.state(org, clock.now)


@pytest.mark.parametrize("status", ["SUSPENDED", "CANCELLED"])
def test_an_inactive_subscription_is_refused_and_reserves_nothing(
    make_gate: Callable[..., LedgerGate], clock, active_leases, status: str
) -> None:
    gate = make_gate()
    gate.set_limits("acme", status=status)
    with pytest.raises(SubscriptionInactiveError, match=f"subscription of acme is {status}"):
        gate.reserve("acme", "r1")
    assert active_leases() == 0
    gate.set_limits("acme", status="trial")
    gate.reserve("acme", "r1")
    assert active_leases() == 1


def test_an_org_without_a_plan_row_gets_the_default_plan(
    make_gate: Callable[..., LedgerGate],
) -> None:
    gate = make_gate(concurrent_limit=2, daily_limit=50)
    assert admitted(gate, ["a", "b", "c"]) == ["a", "b"]
    report = gate.usage("acme")
    assert report["plan"] == {
        "org_slug": "acme",
        "status": "ACTIVE",
        "daily_limit": 50,
        "monthly_limit": 25000,
        "concurrent_limit": 2,
        "source": "default",
    }
    plan = gate.set_limits("acme", daily=7)  # the other values come from the defaults
    assert (plan.daily_limit, plan.concurrent_limit, plan.source) == (7, 2, "database")


def test_a_refusal_names_the_limit_and_reserves_nothing(
    make_gate: Callable[..., LedgerGate], clock, active_leases
) -> None:
    gate = make_gate()
    gate.set_limits("acme", concurrent=2)
    admitted(gate, ["a", "b"])
    with pytest.raises(QuotaExceededError) as caught:
        gate.reserve("acme", "c")
    assert (caught.value.limit, caught.value.limit_value, caught.value.current) == (
        "concurrent",
        2,
        2,
    )
    assert active_leases() == 2
    assert sorted(mirror_state(gate, clock)["leases"]) == ["a", "b"]


def test_release_is_exactly_once_in_both_places(
    make_gate: Callable[..., LedgerGate], clock
) -> None:
    gate = make_gate()
    gate.set_limits("acme", concurrent=1)
    gate.reserve("acme", "a")
    assert [gate.release("acme", "a", succeeded=True) for _ in range(3)] == [True, False, False]
    assert mirror_state(gate, clock)["leases"] == []
    usage = gate.usage("acme")["usage"]
    assert (usage["concurrent_running"], usage["succeeded_runs"], usage["failed_runs"]) == (0, 1, 0)
    assert admitted(gate, ["b", "c"]) == ["b"]


def test_flushall_between_reservations_rebuilds_the_mirror_and_stays_exact(
    make_gate: Callable[..., LedgerGate], redis_client: fakeredis.FakeRedis, clock
) -> None:
    gate = make_gate()
    gate.set_limits("acme", concurrent=5, daily=8)
    assert admitted(gate, ["a", "b", "c"]) == ["a", "b", "c"]
    redis_client.flushall()
    assert admitted(gate, ["d", "e", "f", "g"]) == ["d", "e"]
    assert sorted(mirror_state(gate, clock)["leases"]) == ["a", "b", "c", "d", "e"]
    for run_id in ("a", "b", "c"):
        gate.release("acme", run_id, succeeded=True)
    redis_client.flushall()
    # Three slots free, but only three of the eight daily runs are left.
    assert admitted(gate, ["h", "i", "j", "k"]) == ["h", "i", "j"]
    with pytest.raises(QuotaExceededError) as caught:
        gate.reserve("acme", "l")
    assert (caught.value.limit, caught.value.current) == ("daily", 8)
    assert mirror_state(gate, clock)["daily_runs"] == 8


def test_with_redis_down_the_ledger_alone_decides_and_the_mirror_resyncs_after(
    make_gate: Callable[..., LedgerGate], redis_server: fakeredis.FakeServer, clock
) -> None:
    gate = make_gate()
    gate.set_limits("acme", concurrent=3)
    assert admitted(gate, ["a", "b"]) == ["a", "b"]
    redis_server.connected = False
    assert gate.health().startswith("degraded: redis unavailable")
    assert admitted(gate, ["c", "d"]) == ["c"]
    gate.release("acme", "a", succeeded=True)  # Redis never hears of these releases
    gate.release("acme", "b", succeeded=True)
    assert admitted(gate, ["e", "f", "g"]) == ["e", "f"]
    clock.advance(60)
    redis_server.connected = True

    # Back: Redis still holds a and b and lacks e and f; the gate resyncs it first.
    assert admitted(gate, ["g"]) == []
    assert gate.health() == "ok"
    assert sorted(mirror_state(gate, clock)["leases"]) == ["c", "e", "f"]
    gate.release("acme", "c", succeeded=True)
    assert admitted(gate, ["g", "h"]) == ["g"]
    assert sorted(mirror_state(gate, clock)["leases"]) == ["e", "f", "g"]


def test_stale_ghost_leases_in_the_mirror_do_not_refuse_a_run(
    make_gate: Callable[..., LedgerGate], redis_client: fakeredis.FakeRedis, clock
) -> None:
    gate = make_gate()
    gate.set_limits("acme", concurrent=2)
    gate.reserve("acme", "real")
    leases_key = gate.mirror.keys("acme", clock.now)[0]  # type: ignore[union-attr]
    # A reservation that never reached the ledger: its process crashed in between.
    redis_client.zadd(leases_key, {"ghost": score(clock.now + timedelta(seconds=600))})
    clock.advance(2)
    with pytest.raises(QuotaExceededError):  # as young as a reservation still on its way
        gate.reserve("acme", "second")
    clock.advance(10)

    gate.reserve("acme", "second")  # by now it is a ghost, and the mirror is rebuilt

    assert sorted(mirror_state(gate, clock)["leases"]) == ["real", "second"]
    with pytest.raises(QuotaExceededError):
        gate.reserve("acme", "third")


def test_a_mirror_that_counted_too_little_is_rolled_back_and_resynced(
    make_gate: Callable[..., LedgerGate], redis_client: fakeredis.FakeRedis, clock
) -> None:
    gate = make_gate()
    gate.set_limits("acme", concurrent=1)
    gate.reserve("acme", "held")
    leases_key = gate.mirror.keys("acme", clock.now)[0]  # type: ignore[union-attr]
    redis_client.zrem(leases_key, "held")  # the mirror lost a lease

    with pytest.raises(QuotaExceededError) as caught:
        gate.reserve("acme", "extra")

    assert caught.value.limit == "concurrent"
    state = mirror_state(gate, clock)
    assert (state["leases"], state["daily_runs"]) == (["held"], 1)


def test_a_plan_change_reaches_other_processes_before_their_cache_expires(
    make_gate: Callable[..., LedgerGate],
) -> None:
    api, admin = make_gate(ttl=3600), make_gate(ttl=3600)
    api.set_limits("acme", concurrent=1)
    api.reserve("acme", "a")
    with pytest.raises(QuotaExceededError):
        api.reserve("acme", "b")

    admin.set_limits("acme", concurrent=2)  # another process: the CLI or another API

    api.reserve("acme", "b")
    admin.set_limits("acme", status="SUSPENDED")
    with pytest.raises(SubscriptionInactiveError):
        api.reserve("acme", "c")


@pytest.mark.parametrize("meanwhile", ["usage read", "redis down", "FLUSHALL", "no redis"])
def test_a_plan_change_applies_in_every_process_at_once(
    make_gate: Callable[..., LedgerGate], redis_server: fakeredis.FakeServer, meanwhile: str
) -> None:
    mirror = meanwhile != "no redis"
    api, admin = make_gate(ttl=3600, mirror=mirror), make_gate(ttl=3600, mirror=mirror)
    admin.set_limits("acme", concurrent=3)
    api.reserve("acme", "a")  # the api process caches the plan for an hour
    if meanwhile == "usage read":
        api.usage("acme")  # what GET /admin/orgs/ORG/quota does before a change
    elif meanwhile == "redis down":
        redis_server.connected = False
    elif meanwhile == "FLUSHALL":
        fakeredis.FakeRedis(server=redis_server).flushall()

    admin.set_limits("acme", concurrent=1)  # another process: the CLI or another API
    with pytest.raises(QuotaExceededError) as caught:
        api.reserve("acme", "b")
    assert (caught.value.limit, caught.value.limit_value, caught.value.current) == (
        "concurrent",
        1,
        1,
    )
    admin.set_limits("acme", concurrent=2)  # raised again: no stale refusal either
    api.reserve("acme", "b")
    admin.set_limits("acme", status="SUSPENDED")
    with pytest.raises(SubscriptionInactiveError):
        api.reserve("acme", "c")
    admin.set_limits("acme", status="ACTIVE", concurrent=3)
    api.reserve("acme", "c")
    assert sorted(x["run_id"] for x in admin.usage("acme")["usage"]["leases"]) == ["a", "b", "c"]


def test_a_release_the_mirror_missed_is_not_taken_for_a_reservation_in_flight(
    make_gate: Callable[..., LedgerGate], redis_server: fakeredis.FakeServer, clock
) -> None:
    api, worker = make_gate(), make_gate()
    api.set_limits("acme", concurrent=1)
    api.reserve("acme", "a")
    redis_server.connected = False  # the worker's release reaches the ledger only
    assert worker.release("acme", "a", succeeded=True) is True
    redis_server.connected = True
    assert mirror_state(api, clock)["leases"] == ["a"]  # young, but the ledger ended it

    api.reserve("acme", "b")  # the mirror refuses, the ledger has room: rebuilt without "a"

    state = mirror_state(api, clock)
    assert (state["leases"], state["daily_runs"]) == (["b"], 2)
    api.reconcile()
    assert mirror_state(api, clock)["leases"] == ["b"]


def test_a_heartbeat_for_a_lease_the_ledger_ended_drops_it_from_the_mirror(
    make_gate: Callable[..., LedgerGate], redis_server: fakeredis.FakeServer, clock
) -> None:
    api, worker = make_gate(), make_gate()
    api.reserve("acme", "a")
    redis_server.connected = False
    worker.release("acme", "a", succeeded=True)
    redis_server.connected = True
    clock.advance(60)
    worker.heartbeat("acme", "a")  # a worker that has not noticed yet

    assert mirror_state(api, clock)["leases"] == []


def test_without_redis_a_plan_change_in_this_process_applies_at_once(
    make_gate: Callable[..., LedgerGate],
) -> None:
    gate = make_gate(mirror=False, ttl=3600)
    gate.set_limits("acme", concurrent=1)
    gate.reserve("acme", "a")
    gate.set_limits("acme", concurrent=2)
    gate.reserve("acme", "b")
    assert gate.health().startswith("ledger only")


def test_heartbeat_keeps_a_lease_and_reconcile_frees_the_ones_that_stopped(
    make_gate: Callable[..., LedgerGate], clock
) -> None:
    gate = make_gate(lease=60)
    gate.set_limits("acme", concurrent=2)
    admitted(gate, ["alive", "dead"])
    for _ in range(3):
        clock.advance(40)
        gate.heartbeat("acme", "alive")
    assert gate.reconcile() == 1
    assert mirror_state(gate, clock)["leases"] == ["alive"]
    usage = gate.usage("acme")["usage"]
    assert [lease["run_id"] for lease in usage["leases"]] == ["alive"]
    assert usage["concurrent_running"] == 1
