"""The quota contracts: the gate the run service calls before anything is enqueued, and
the plan administration operators use (the admin API, the CLI)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from quota.plans import Plan


class QuotaGate(Protocol):
    def reserve(self, org_slug: str, run_id: str) -> None:
        """Reserve a run slot or raise QuotaExceededError / SubscriptionInactiveError."""

    def release(self, org_slug: str, run_id: str, succeeded: bool) -> bool:
        """Release the run's concurrent slot. Idempotent: True only the first time."""

    def heartbeat(self, org_slug: str, run_id: str) -> None:
        """Extend the run's lease while it is alive."""

    def reconcile(self) -> int:
        """The reaper's pass: free expired leases, resync caches; returns leases freed."""

    @property
    def mirrored(self) -> bool:
        """Whether the gate keeps a Redis mirror, so a Redis outage leaves it degraded (the
        SQL ledger deciding alone) rather than unaffected."""


class PlanAdmin(Protocol):
    def set_limits(
        self,
        org_slug: str,
        *,
        daily: int | None = None,
        monthly: int | None = None,
        concurrent: int | None = None,
        status: str | None = None,
    ) -> Plan:
        """Change the org's plan in its source; every process sees the change."""

    def usage(self, org_slug: str) -> dict[str, Any]:
        """Limits, usage today and this month, running runs and their leases, the mirror."""


class AllowAllGate:
    """Admits every run (PIPELINE_OPS_QUOTA=off). The default is quota.gate.LedgerGate."""

    mirrored = False

    def reserve(self, org_slug: str, run_id: str) -> None:
        return None

    def release(self, org_slug: str, run_id: str, succeeded: bool) -> bool:
        return True

    def heartbeat(self, org_slug: str, run_id: str) -> None:
        return None

    def reconcile(self) -> int:
        return 0
