"""Plan sources, the plan cache, validation of changes, settings and the gate factory."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import Engine

from pipeline.settings import Settings
from pipeline_ops_core.errors import TerminalError, TransientError
from quota.base import AllowAllGate
from quota.cache import PlanCache
from quota.factory import build_quota, plan_source
from quota.gate import LedgerGate
from quota.plans import DatabasePlanSource, Plan, PlanDefaults, changed_plan
from quota.plans_supabase import SupabasePlanSource


class ScriptedSource:
    """A plan source answering from a list: a Plan, None, or an exception to raise."""

    name = "scripted"

    def __init__(self, *answers: object) -> None:
        self.answers = list(answers)
        self.calls = 0

    def get(self, org_slug: str) -> Plan | None:
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    def put(self, plan: Plan) -> None:
        raise NotImplementedError


def plan_of(concurrent: int) -> Plan:
    return Plan("acme", "ACTIVE", 10, 100, concurrent, source="scripted")


def test_database_source_round_trips_a_plan(engine: Engine, clock) -> None:
    source = DatabasePlanSource(engine, clock=clock)
    assert source.get("acme") is None
    source.put(Plan("acme", "TRIAL", 1, 2, 3))
    source.put(Plan("acme", "SUSPENDED", 4, 5, 6))
    assert source.get("acme") == Plan("acme", "SUSPENDED", 4, 5, 6, source="database")


def test_the_cache_reuses_a_plan_for_its_ttl_then_reads_again() -> None:
    ticks = [0.0]
    source = ScriptedSource(plan_of(1), plan_of(2), None)
    cache = PlanCache(source, PlanDefaults(concurrent_limit=9), ttl=30, monotonic=lambda: ticks[0])
    assert cache.get("acme").plan.concurrent_limit == 1
    ticks[0] = 29.9
    assert cache.get("acme").plan.concurrent_limit == 1 and source.calls == 1
    ticks[0] = 30.0
    assert cache.get("acme").plan.concurrent_limit == 2
    cache.invalidate("acme")
    # No plan row any more: the default plan.
    assert cache.get("acme").plan == PlanDefaults(concurrent_limit=9).plan("acme")


def test_a_transient_source_error_serves_the_last_plan_or_raises_without_one() -> None:
    ticks = [0.0]
    down = TransientError("Supabase answered 503")
    source = ScriptedSource(down, plan_of(3), down, plan_of(4))
    cache = PlanCache(source, PlanDefaults(), ttl=30, monotonic=lambda: ticks[0])
    with pytest.raises(TransientError):
        cache.get("acme")
    assert cache.get("acme").plan.concurrent_limit == 3
    ticks[0] = 100.0
    assert cache.get("acme").plan.concurrent_limit == 3  # stale, but better than nothing
    ticks[0] = 101.0
    assert cache.get("acme").plan.concurrent_limit == 3 and source.calls == 3  # no hammering
    ticks[0] = 106.0
    assert cache.get("acme").plan.concurrent_limit == 4


def test_a_source_outage_does_not_serve_a_plan_known_to_be_outdated() -> None:
    epoch = [1]
    down = TransientError("Supabase answered 503")
    source = ScriptedSource(plan_of(3), down, down)
    cache = PlanCache(source, PlanDefaults(), ttl=0)
    assert cache.get("acme", lambda: epoch[0]).version == 1
    assert cache.get("acme", lambda: epoch[0]).plan.concurrent_limit == 3  # same epoch: kept
    epoch[0] = 2  # the plan changed since it was read: limits no longer in force
    with pytest.raises(TransientError, match="503"):
        cache.get("acme", lambda: epoch[0])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"daily": -1}, "daily_limit must be a whole number >= 0"),
        ({"concurrent": True}, "concurrent_limit must be a whole number"),
        ({"status": "PAUSED"}, "status must be one of ACTIVE, TRIAL, SUSPENDED, CANCELLED"),
        ({}, "nothing to change"),
    ],
)
def test_invalid_plan_changes_are_refused(changes: dict, message: str) -> None:
    with pytest.raises(TerminalError, match=message):
        changed_plan(plan_of(1), **changes)


def test_plan_changes_keep_what_is_not_given() -> None:
    changed = changed_plan(plan_of(1), monthly=0, status=" trial ")
    assert (changed.daily_limit, changed.monthly_limit, changed.status) == (10, 0, "TRIAL")


def test_quota_settings_come_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "PIPELINE_OPS_VAR_DIR": str(tmp_path),
            "PIPELINE_OPS_PLAN_CACHE_SECONDS": "5",
            "PIPELINE_OPS_QUEUE_TIMEOUT": "600",
            "PIPELINE_OPS_HEARTBEAT_TIMEOUT": "60",
            "PIPELINE_OPS_DEFAULT_DAILY_LIMIT": "7",
            "PIPELINE_OPS_DEFAULT_MONTHLY_LIMIT": "70",
            "PIPELINE_OPS_DEFAULT_CONCURRENT_LIMIT": "2",
        }
    )
    assert settings.plan_cache_seconds == 5
    # The lease outlasts a queued run, a retry countdown and a missed heartbeat.
    assert settings.quota_lease_seconds == 600 + 3600 + 60
    assert (settings.default_daily_limit, settings.default_monthly_limit) == (7, 70)
    assert settings.default_concurrent_limit == 2 and settings.quota_enabled
    explicit = {"PIPELINE_OPS_QUOTA_LEASE_SECONDS": "90", "PIPELINE_OPS_QUOTA": "off"}
    other = Settings.from_env({"PIPELINE_OPS_VAR_DIR": str(tmp_path), **explicit})
    assert other.quota_lease_seconds == 90 and not other.quota_enabled
    with pytest.raises(ValueError, match="PIPELINE_OPS_PLAN_CACHE_SECONDS must be an integer"):
        Settings.from_env({"PIPELINE_OPS_PLAN_CACHE_SECONDS": "soon"})


def test_the_factory_picks_sources_and_gates_from_settings(
    engine: Engine, clock, tmp_path: Path
) -> None:
    base = Settings.from_env({"PIPELINE_OPS_VAR_DIR": str(tmp_path)})
    assert isinstance(plan_source(base, engine, clock), DatabasePlanSource)
    only_url = replace(base, supabase_url="http://127.0.0.1:1")
    assert isinstance(plan_source(only_url, engine, clock), DatabasePlanSource)
    both = replace(only_url, supabase_service_role_key="service-role")
    assert isinstance(plan_source(both, engine, clock), SupabasePlanSource)

    gate, plans = build_quota(base, engine, clock)
    assert isinstance(gate, LedgerGate) and gate.mirror is not None
    assert plans is gate  # limits set through the admin reach this gate's plan cache at once
    eager, _ = build_quota(replace(base, eager=True), engine, clock)
    assert isinstance(eager, LedgerGate) and eager.mirror is None
    off, off_plans = build_quota(replace(base, quota_enabled=False), engine, clock)
    assert isinstance(off, AllowAllGate)
    assert isinstance(off_plans, LedgerGate)  # plans are still administered on the ledger
