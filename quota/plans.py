"""Plan limits: what an org's subscription allows, and where that is read from.

Two sources share one contract: `DatabasePlanSource` (the `org_subscriptions` table of
the metadata DB, the embedded default) and `SupabasePlanSource` (quota/supabase.py).
An org without a plan row gets `PlanDefaults`: ACTIVE with generous limits, so a fresh
install works before anyone sets limits, and an operator can still tighten them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Engine, select

from pipeline_ops_core.errors import TerminalError
from quota.models import dialect_insert, org_subscriptions

ACTIVE, TRIAL, SUSPENDED, CANCELLED = "ACTIVE", "TRIAL", "SUSPENDED", "CANCELLED"
STATUSES = (ACTIVE, TRIAL, SUSPENDED, CANCELLED)
ADMITTING = frozenset({ACTIVE, TRIAL})
LIMIT_FIELDS = ("daily_limit", "monthly_limit", "concurrent_limit")


@dataclass(frozen=True)
class Plan:
    org_slug: str
    status: str
    daily_limit: int
    monthly_limit: int
    concurrent_limit: int
    # Where the values came from: database, supabase, or default (no plan row).
    source: str = "default"

    @property
    def admits(self) -> bool:
        # Anything but ACTIVE or TRIAL, including a status we don't know, refuses:
        # failing closed is the safe side for a paid plan.
        return self.status in ADMITTING

    def as_dict(self) -> dict[str, Any]:
        return {
            "org_slug": self.org_slug,
            "status": self.status,
            "daily_limit": self.daily_limit,
            "monthly_limit": self.monthly_limit,
            "concurrent_limit": self.concurrent_limit,
            "source": self.source,
        }


@dataclass(frozen=True)
class PlanDefaults:
    """The plan of an org that has no plan row (env PIPELINE_OPS_DEFAULT_*_LIMIT)."""

    daily_limit: int = 1000
    monthly_limit: int = 25000
    concurrent_limit: int = 20
    status: str = ACTIVE

    def plan(self, org_slug: str) -> Plan:
        return Plan(
            org_slug,
            self.status,
            self.daily_limit,
            self.monthly_limit,
            self.concurrent_limit,
            source="default",
        )


class PlanSource(Protocol):
    name: str

    def get(self, org_slug: str) -> Plan | None:
        """The org's plan, None when it has no plan row; TransientError if unreachable."""

    def put(self, plan: Plan) -> None:
        """Create or replace the org's plan row."""


def plan_from_row(row: Mapping[Any, Any], defaults: PlanDefaults, source: str) -> Plan:
    """A plan from a row; a NULL limit falls back to the default for that limit."""
    values = {
        name: int(row[name]) if row.get(name) is not None else getattr(defaults, name)
        for name in LIMIT_FIELDS
    }
    status = str(row.get("status") or defaults.status).strip().upper()
    return Plan(str(row["org_slug"]), status, source=source, **values)


def changed_plan(
    current: Plan,
    *,
    daily: int | None = None,
    monthly: int | None = None,
    concurrent: int | None = None,
    status: str | None = None,
) -> Plan:
    """`current` with the given fields replaced, validated; TerminalError if invalid."""
    changes: dict[str, Any] = {}
    for name, value in (
        ("daily_limit", daily),
        ("monthly_limit", monthly),
        ("concurrent_limit", concurrent),
    ):
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise TerminalError(f"{name} must be a whole number >= 0, got {value!r}")
            changes[name] = value
    if status is not None:
        normalized = status.strip().upper()
        if normalized not in STATUSES:
            raise TerminalError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        changes["status"] = normalized
    if not changes:
        raise TerminalError("nothing to change: give a limit or a status")
    return replace(current, **changes)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class DatabasePlanSource:
    """Plan rows in the metadata DB's `org_subscriptions` table."""

    name = "database"

    def __init__(
        self,
        engine: Engine,
        defaults: PlanDefaults | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.engine = engine
        self.defaults = defaults or PlanDefaults()
        self.clock = clock

    def get(self, org_slug: str) -> Plan | None:
        query = select(org_subscriptions).where(org_subscriptions.c.org_slug == org_slug)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return plan_from_row(row, self.defaults, self.name) if row else None

    def put(self, plan: Plan) -> None:
        values = {
            "org_slug": plan.org_slug,
            "status": plan.status,
            "daily_limit": plan.daily_limit,
            "monthly_limit": plan.monthly_limit,
            "concurrent_limit": plan.concurrent_limit,
            "updated_at": self.clock(),
        }
        with self.engine.begin() as conn:
            stmt = dialect_insert(conn, org_subscriptions).values(**values)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["org_slug"],
                    set_={k: v for k, v in values.items() if k != "org_slug"},
                )
            )
