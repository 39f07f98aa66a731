"""An org's quota usage at one instant, and which limit (if any) it has reached."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pipeline_ops_core.errors import QuotaExceededError
from quota import periods
from quota.plans import Plan


@dataclass(frozen=True)
class Lease:
    run_id: str
    acquired_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class Usage:
    """Counters already rolled to `day`/`month` (a new day reads as 0 runs)."""

    org_slug: str
    day: date
    month: date
    daily_runs: int
    monthly_runs: int
    concurrent_running: int
    succeeded_runs: int = 0
    failed_runs: int = 0
    leases: list[Lease] = field(default_factory=list)
    plan_epoch: int = 0

    def refusal(self, plan: Plan, now: datetime) -> QuotaExceededError | None:
        """The limit this usage has reached, as the error to raise; None if there is room.

        When several are reached, the one that frees last is named (monthly, then
        daily, then concurrent), so its Retry-After is worth waiting for.
        """
        earliest = min((lease.expires_at for lease in self.leases), default=None)
        for limit, current, value in (
            ("monthly", self.monthly_runs, plan.monthly_limit),
            ("daily", self.daily_runs, plan.daily_limit),
            ("concurrent", self.concurrent_running, plan.concurrent_limit),
        ):
            if current >= value:
                return QuotaExceededError(
                    limit, value, current, periods.retry_after(limit, now, earliest)
                )
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "daily_runs": self.daily_runs,
            "month": self.month.strftime("%Y-%m"),
            "monthly_runs": self.monthly_runs,
            "concurrent_running": self.concurrent_running,
            "succeeded_runs": self.succeeded_runs,
            "failed_runs": self.failed_runs,
            "leases": [
                {
                    "run_id": lease.run_id,
                    "acquired_at": lease.acquired_at.isoformat(),
                    "expires_at": lease.expires_at.isoformat(),
                }
                for lease in self.leases
            ],
        }
