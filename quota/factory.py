"""Build the quota gate from settings (duck-typed: quota never imports pipeline)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Engine

from quota.base import AllowAllGate, PlanAdmin, QuotaGate
from quota.cache import PlanCache
from quota.gate import LedgerGate
from quota.ledger import SqlLedger
from quota.mirror import RedisMirror
from quota.plans import DatabasePlanSource, PlanDefaults, PlanSource
from quota.plans_supabase import SupabasePlanSource


class GateSettings(Protocol):
    @property
    def redis_url(self) -> str: ...
    @property
    def eager(self) -> bool: ...
    @property
    def supabase_url(self) -> str | None: ...
    @property
    def supabase_service_role_key(self) -> str | None: ...
    @property
    def quota_enabled(self) -> bool: ...
    @property
    def plan_cache_seconds(self) -> int: ...
    @property
    def quota_lease_seconds(self) -> int: ...
    @property
    def default_daily_limit(self) -> int: ...
    @property
    def default_monthly_limit(self) -> int: ...
    @property
    def default_concurrent_limit(self) -> int: ...


def plan_defaults(settings: GateSettings) -> PlanDefaults:
    return PlanDefaults(
        daily_limit=settings.default_daily_limit,
        monthly_limit=settings.default_monthly_limit,
        concurrent_limit=settings.default_concurrent_limit,
    )


def plan_source(
    settings: GateSettings, engine: Engine, clock: Callable[[], datetime]
) -> PlanSource:
    """Supabase when both of its variables are set, else the metadata DB's table."""
    defaults = plan_defaults(settings)
    if settings.supabase_url and settings.supabase_service_role_key:
        return SupabasePlanSource(
            settings.supabase_url, settings.supabase_service_role_key, defaults
        )
    return DatabasePlanSource(engine, defaults, clock)


def mirror_prefix(engine: Engine) -> str:
    """Redis key prefix of the mirror of the ledger in `engine`'s database.

    A mirror reflects one ledger. Two deployments (or test stacks) sharing a Redis
    database but not a metadata database must not read each other's leases, so the
    prefix names the ledger (a hash of its URL, password left out).
    """
    ledger = engine.url.render_as_string(hide_password=True)
    return f"pipeline_ops:quota:{hashlib.sha256(ledger.encode()).hexdigest()[:12]}:"


def build_quota(
    settings: GateSettings, engine: Engine, clock: Callable[[], datetime]
) -> tuple[QuotaGate, PlanAdmin]:
    """The gate runs pass, and the plan administration operators use.

    Plans are administered on the enforcing gate even with PIPELINE_OPS_QUOTA=off (runs
    then pass an AllowAllGate); with the quota on, the two are one object, so a limit
    changed through it reaches this process's plan cache at once.
    """
    ledger = build_ledger_gate(settings, engine, clock)
    return (ledger if settings.quota_enabled else AllowAllGate()), ledger


def build_ledger_gate(
    settings: GateSettings, engine: Engine, clock: Callable[[], datetime]
) -> LedgerGate:
    """The enforcing gate, whatever PIPELINE_OPS_QUOTA says."""
    cache = PlanCache(
        plan_source(settings, engine, clock), plan_defaults(settings), settings.plan_cache_seconds
    )
    # Eager mode (--local, tests) runs without Redis: the ledger alone is exact anyway.
    mirror = None
    if not settings.eager:
        mirror = RedisMirror.from_url(settings.redis_url, prefix=mirror_prefix(engine))
    lease = timedelta(seconds=settings.quota_lease_seconds)
    return LedgerGate(SqlLedger(engine), cache, mirror, clock, lease)
