"""The quota through the run service: run-and-complete cycles, dead runs, exactly-once ends."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline.bootstrap import Services, build_services
from pipeline.runs.service import RunRequest
from pipeline.settings import Settings
from pipeline.storage import state
from pipeline.storage.db import upgrade
from pipeline_ops_core.errors import QuotaExceededError, SubscriptionInactiveError
from quota.gate import LedgerGate
from tests.support.doubles import RecordingDispatcher
from tests.support.records import count_runs

PIPELINE = """\
pipeline_id: quota_unit_one
name: One noop step
provider: quota
domain: unit
steps:
  - step_id: only
    ps_type: generic.noop
"""


@pytest.fixture
def services(tmp_path: Path, clock, make_gate: Callable[..., LedgerGate]) -> Services:
    configs = tmp_path / "configs"
    (configs / "quota" / "unit").mkdir(parents=True)
    (configs / "quota" / "unit" / "one.yml").write_text(PIPELINE)
    settings = Settings(
        var_dir=tmp_path / "var",
        database_url=f"sqlite:///{tmp_path / 'meta.db'}",  # the make_gate fixture's DB
        redis_url="redis://127.0.0.1:1/0",
        warehouse_url=f"duckdb:///{tmp_path / 'warehouse.duckdb'}",
        configs_dir=configs,
        heartbeat_timeout=60,
        queue_timeout=600,
    )
    upgrade(settings.database_url)
    svc = build_services(
        settings, RecordingDispatcher(), gate=make_gate(lease=3600), clock=clock, db_time=clock
    )
    svc.orgs.create("acme")
    return svc


def start(svc: Services, day: int) -> str:
    req = RunRequest("acme", "quota", "unit", "one", date(2025, 12, day), date(2025, 12, day))
    return str(svc.runs.start(req).run_id)


def usage(svc: Services) -> dict[str, Any]:
    return svc.gate.usage("acme")["usage"]  # type: ignore[attr-defined,no-any-return]


def test_run_and_complete_cycles_admit_exactly_the_daily_limit_per_utc_day(
    services: Services, clock
) -> None:
    services.gate.set_limits("acme", daily=10, monthly=1000, concurrent=1)  # type: ignore[attr-defined]
    clock.now = datetime(2026, 1, 5, 23, 0, tzinfo=UTC)
    for cycle in range(10):
        run_id = start(services, cycle + 1)
        services.store.transition(run_id, state.RUNNING)
        assert services.runs.complete(run_id)
    with pytest.raises(QuotaExceededError) as caught:
        start(services, 20)
    assert (caught.value.limit, caught.value.current, caught.value.retry_after) == (
        "daily",
        10,
        3600,
    )
    assert count_runs(services.store, "acme") == 10  # the refusal recorded nothing

    clock.now = datetime(2026, 1, 6, 0, 0, 5, tzinfo=UTC)
    run_id = start(services, 21)
    assert usage(services)["daily_runs"] == 1 and usage(services)["succeeded_runs"] == 10
    services.runs.fail(run_id, "boom")
    assert usage(services)["failed_runs"] == 1


def test_a_dead_run_frees_its_slot_before_the_next_reservation(services: Services, clock) -> None:
    services.gate.set_limits("acme", concurrent=1)  # type: ignore[attr-defined]
    dead = start(services, 1)
    beat = clock.now
    services.store.begin_attempt(
        dead,
        "only",
        1,
        exists=False,
        task_id=None,
        worker="gone:1",
        alive_for=60,
        message="started",
    )
    clock.advance(30)
    with pytest.raises(QuotaExceededError, match="concurrent"):
        start(services, 2)  # still alive: its heartbeat deadline has not passed

    clock.advance(31)
    fresh = start(services, 2)

    run = services.store.get_run(dead)
    assert run.status == state.FAILED
    assert run.error_message.startswith(f"no heartbeat since {beat.isoformat()}")
    assert services.store.transitions(dead)[-1].reason.startswith("reaper: no heartbeat")
    now = usage(services)
    assert (now["concurrent_running"], now["failed_runs"]) == (1, 1)
    assert [lease["run_id"] for lease in now["leases"]] == [fresh]


def test_every_way_a_run_ends_releases_its_slot_exactly_once(services: Services, clock) -> None:
    services.gate.set_limits("acme", concurrent=2)  # type: ignore[attr-defined]
    cancelled, finished = start(services, 1), start(services, 2)
    services.runs.cancel("acme", cancelled)
    services.store.transition(finished, state.RUNNING)
    services.runs.complete(finished)
    # The finalizer, the error callback and the reaper may all come again.
    services.runs.fail(cancelled, "late error callback")
    services.runs.complete(finished)
    services.gate.release("acme", finished, succeeded=False)
    clock.advance(3600)
    services.runs.reap()

    now = usage(services)
    assert (now["concurrent_running"], now["succeeded_runs"], now["failed_runs"]) == (0, 1, 1)
    start(services, 3)  # both slots are free again
    start(services, 4)


def test_a_refused_or_inactive_org_records_no_run(services: Services) -> None:
    services.gate.set_limits("acme", concurrent=0)  # type: ignore[attr-defined]
    with pytest.raises(QuotaExceededError):
        start(services, 1)
    services.gate.set_limits("acme", concurrent=5, status="CANCELLED")  # type: ignore[attr-defined]
    with pytest.raises(SubscriptionInactiveError):
        start(services, 1)
    assert count_runs(services.store, "acme") == 0
    assert services.runs.dispatcher.enqueued == []  # type: ignore[attr-defined]


def test_the_reaper_frees_a_lease_no_run_ever_renewed(services: Services, clock) -> None:
    gate = services.gate
    gate.set_limits("acme", concurrent=1)  # type: ignore[attr-defined]
    gate.reserve("acme", "orphan")  # a process that died before recording its run
    clock.advance(3600)
    assert services.runs.reap() == []
    assert usage(services)["concurrent_running"] == 0
    start(services, 1)
