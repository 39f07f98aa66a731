"""The SQL ledger alone (SQLite): limits, period roll-over, leases, exactly-once release."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from pipeline_ops_core.errors import QuotaExceededError
from quota import periods
from quota.ledger import PlanChanged, SqlLedger
from quota.plans import Plan

LEASE = timedelta(minutes=10)


def reserve(ledger: SqlLedger, plan: Plan, run_id: str, now: datetime) -> None:
    ledger.reserve(plan, run_id, now, now + LEASE, epoch=0)  # no plan change in these tests


def refusal(ledger: SqlLedger, plan: Plan, run_id: str, now: datetime) -> QuotaExceededError:
    with pytest.raises(QuotaExceededError) as caught:
        reserve(ledger, plan, run_id, now)
    return caught.value


def test_admits_up_to_the_concurrent_limit_then_names_it(
    engine: Engine, plan: Callable[..., Plan], clock, active_leases
) -> None:
    ledger, p = SqlLedger(engine), plan(concurrent=3)
    for i in range(3):
        reserve(ledger, p, f"r{i}", clock.now)

    exc = refusal(ledger, p, "r3", clock.now)

    assert (exc.limit, exc.limit_value, exc.current) == ("concurrent", 3, 3)
    assert exc.retry_after == periods.CONCURRENT_RETRY_AFTER
    assert "concurrent quota exceeded: 3 of 3 used" in str(exc)
    assert active_leases() == 3
    usage = ledger.snapshot("acme", clock.now)
    assert (usage.daily_runs, usage.monthly_runs, usage.concurrent_running) == (3, 3, 3)


def test_release_is_exactly_once_and_counts_the_outcome(
    engine: Engine, plan: Callable[..., Plan], clock
) -> None:
    ledger, p = SqlLedger(engine), plan(concurrent=2)
    reserve(ledger, p, "ok", clock.now)
    reserve(ledger, p, "bad", clock.now)

    assert ledger.release("ok", succeeded=True, now=clock.now) is True
    assert ledger.release("ok", succeeded=True, now=clock.now) is False
    assert ledger.release("ok", succeeded=False, now=clock.now) is False
    assert ledger.release("bad", succeeded=False, now=clock.now) is True
    assert ledger.release("never-reserved", succeeded=True, now=clock.now) is False

    usage = ledger.snapshot("acme", clock.now)
    assert (usage.concurrent_running, usage.succeeded_runs, usage.failed_runs) == (0, 1, 1)
    # Two slots free again: both reservations fit.
    reserve(ledger, p, "again1", clock.now)
    reserve(ledger, p, "again2", clock.now)


def test_daily_limit_admits_ten_per_utc_day_and_resets_at_midnight(
    engine: Engine, plan: Callable[..., Plan], clock
) -> None:
    ledger, p = SqlLedger(engine), plan(daily=10, concurrent=1)
    clock.now = datetime(2026, 1, 5, 23, 50, tzinfo=UTC)
    for i in range(10):
        reserve(ledger, p, f"d1-{i}", clock.now)
        assert ledger.release(f"d1-{i}", succeeded=True, now=clock.now)

    exc = refusal(ledger, p, "d1-10", clock.now)
    assert (exc.limit, exc.limit_value, exc.current) == ("daily", 10, 10)
    assert exc.retry_after == 600  # 23:50 -> midnight

    clock.now = datetime(2026, 1, 5, 23, 59, 59, 500000, tzinfo=UTC)
    assert refusal(ledger, p, "d1-late", clock.now).retry_after == 1

    clock.now = datetime(2026, 1, 6, 0, 0, tzinfo=UTC)
    for i in range(10):
        reserve(ledger, p, f"d2-{i}", clock.now)
        ledger.release(f"d2-{i}", succeeded=True, now=clock.now)
    assert refusal(ledger, p, "d2-10", clock.now).limit == "daily"
    usage = ledger.snapshot("acme", clock.now)
    assert (usage.daily_runs, usage.monthly_runs, usage.succeeded_runs) == (10, 20, 20)


def test_monthly_limit_resets_at_the_utc_month_start(
    engine: Engine, plan: Callable[..., Plan], clock
) -> None:
    ledger, p = SqlLedger(engine), plan(daily=10, monthly=25, concurrent=1)
    admitted: dict[str, int] = {}
    for day in (29, 30, 31):
        clock.now = datetime(2026, 1, day, 12, tzinfo=UTC)
        for i in range(12):
            try:
                reserve(ledger, p, f"{day}-{i}", clock.now)
            except QuotaExceededError as exc:
                last = exc
                continue
            ledger.release(f"{day}-{i}", succeeded=True, now=clock.now)
            admitted[str(day)] = admitted.get(str(day), 0) + 1
    assert admitted == {"29": 10, "30": 10, "31": 5}
    assert (last.limit, last.limit_value, last.current) == ("monthly", 25, 25)
    assert last.retry_after == 12 * 3600  # Jan 31 12:00 -> Feb 1 00:00

    clock.now = datetime(2026, 2, 1, 0, 0, 1, tzinfo=UTC)
    reserve(ledger, p, "feb", clock.now)
    usage = ledger.snapshot("acme", clock.now)
    assert (usage.daily_runs, usage.monthly_runs) == (1, 1)


@pytest.mark.parametrize("limit", ["daily", "monthly"])
def test_a_limit_of_zero_admits_nothing_in_a_new_period_either(
    engine: Engine, plan: Callable[..., Plan], clock, limit: str
) -> None:
    ledger = SqlLedger(engine)
    clock.now = datetime(2026, 1, 31, 23, 55, tzinfo=UTC)
    reserve(ledger, plan(), "jan", clock.now)  # the org's row now names Jan 31
    zero = plan(**{limit: 0})
    assert refusal(ledger, zero, "same_day", clock.now).limit == limit

    clock.now = datetime(2026, 2, 1, 0, 0, tzinfo=UTC)  # a new day and a new month
    caught = refusal(ledger, zero, "feb", clock.now)
    assert (caught.limit, caught.limit_value, caught.current) == (limit, 0, 0)
    usage = ledger.snapshot("acme", clock.now)
    assert (usage.daily_runs, usage.monthly_runs) == (0, 0)
    assert [lease.run_id for lease in usage.leases] == ["jan"]


def test_the_limit_that_frees_last_is_the_one_named(
    engine: Engine, plan: Callable[..., Plan], clock
) -> None:
    ledger = SqlLedger(engine)
    reserve(ledger, plan(daily=1, concurrent=1), "only", clock.now)
    # Daily and concurrent are both used up: waiting for the slot would not help.
    assert refusal(ledger, plan(daily=1, concurrent=1), "next", clock.now).limit == "daily"
    assert refusal(ledger, plan(daily=1, monthly=1, concurrent=1), "n", clock.now).limit == (
        "monthly"
    )


def test_an_expired_lease_frees_its_slot_and_a_late_release_counts_only_the_outcome(
    engine: Engine, plan: Callable[..., Plan], clock
) -> None:
    ledger, p = SqlLedger(engine), plan(concurrent=1)
    reserve(ledger, p, "orphan", clock.now)  # its process died before it recorded the run
    assert refusal(ledger, p, "blocked", clock.now).retry_after == periods.CONCURRENT_RETRY_AFTER
    clock.advance(LEASE.total_seconds() - 3)
    assert refusal(ledger, p, "soon", clock.now).retry_after == 3  # the lease ends first

    clock.advance(3)
    reserve(ledger, p, "next", clock.now)  # the expired lease was swept first

    assert ledger.release("orphan", succeeded=False, now=clock.now) is False
    assert ledger.release("orphan", succeeded=False, now=clock.now) is False
    usage = ledger.snapshot("acme", clock.now)
    assert (usage.concurrent_running, usage.failed_runs) == (1, 1)
    assert [lease.run_id for lease in usage.leases] == ["next"]


def test_heartbeat_extends_a_live_lease_but_never_revives_an_expired_one(
    engine: Engine, plan: Callable[..., Plan], clock
) -> None:
    ledger, p = SqlLedger(engine), plan(concurrent=1)
    reserve(ledger, p, "alive", clock.now)
    clock.advance(LEASE.total_seconds() - 1)
    assert ledger.heartbeat("alive", clock.now, clock.now + LEASE) is True
    clock.advance(LEASE.total_seconds() - 1)
    assert refusal(ledger, p, "other", clock.now).limit == "concurrent"

    clock.advance(2)
    assert ledger.heartbeat("alive", clock.now, clock.now + LEASE) is False
    reserve(ledger, p, "other", clock.now)


def test_a_plan_read_before_a_change_admits_and_refuses_nothing(
    engine: Engine, plan: Callable[..., Plan], clock
) -> None:
    ledger = SqlLedger(engine)
    assert ledger.plan_epoch("acme") == 0  # no row yet
    reserve(ledger, plan(concurrent=5), "a", clock.now)
    assert ledger.bump_plan_epoch("acme", clock.now) == 1
    assert ledger.bump_plan_epoch("globex", clock.now) == 1  # creates the org's row
    assert ledger.plan_epoch("acme") == 1

    # The limits cached at epoch 0 would admit; the ledger says the plan moved on.
    with pytest.raises(PlanChanged) as caught:
        ledger.reserve(plan(concurrent=5), "b", clock.now, clock.now + LEASE, epoch=0)
    assert caught.value.epoch == 1
    with pytest.raises(PlanChanged):  # and a refusal by an old plan is no refusal either
        ledger.reserve(plan(concurrent=1), "b", clock.now, clock.now + LEASE, epoch=0)
    usage = ledger.snapshot("acme", clock.now)
    assert ([lease.run_id for lease in usage.leases], usage.daily_runs) == (["a"], 1)
    assert usage.plan_epoch == 1

    ledger.reserve(plan(concurrent=5), "b", clock.now, clock.now + LEASE, epoch=1)
    assert ledger.snapshot("acme", clock.now).concurrent_running == 2


def test_sweep_releases_expired_leases_of_every_org(
    engine: Engine, plan: Callable[..., Plan], clock
) -> None:
    ledger = SqlLedger(engine)
    reserve(ledger, plan("acme"), "a", clock.now)
    reserve(ledger, plan("globex"), "g", clock.now)
    assert ledger.sweep(clock.now) == 0
    clock.advance(LEASE.total_seconds())
    assert ledger.sweep(clock.now) == 2
    assert ledger.snapshot("acme", clock.now).concurrent_running == 0
    assert ledger.orgs() == ["acme", "globex"]


def test_threads_racing_on_sqlite_admit_exactly_the_limit(
    engine: Engine, plan: Callable[..., Plan], clock
) -> None:
    ledger, p = SqlLedger(engine), plan(concurrent=5)
    barrier = threading.Barrier(40)
    outcomes: list[str] = []

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            reserve(ledger, p, f"t{i}", clock.now)
            outcomes.append("admitted")
        except QuotaExceededError as exc:
            outcomes.append(exc.limit)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert outcomes.count("admitted") == 5
    assert outcomes.count("concurrent") == 35
    assert ledger.snapshot("acme", clock.now).concurrent_running == 5


@pytest.mark.parametrize(
    ("now", "limit", "expected"),
    [
        (datetime(2026, 1, 5, 0, 0, tzinfo=UTC), "daily", 86400),
        (datetime(2026, 12, 31, 23, 0, tzinfo=UTC), "monthly", 3600),  # to Jan 1 next year
        (datetime(2026, 2, 28, 0, 0, tzinfo=UTC), "monthly", 86400),
        (datetime(2026, 2, 28, 0, 0, tzinfo=UTC), "concurrent", periods.CONCURRENT_RETRY_AFTER),
    ],
)
def test_retry_after_counts_to_the_next_utc_period(
    now: datetime, limit: str, expected: int
) -> None:
    assert periods.retry_after(limit, now) == expected
