"""The quota contract the run service calls before anything is enqueued."""

from __future__ import annotations

from typing import Protocol


class QuotaGate(Protocol):
    def reserve(self, org_slug: str, run_id: str) -> None:
        """Reserve a run slot or raise QuotaExceededError / SubscriptionInactiveError."""

    def release(self, org_slug: str, run_id: str, succeeded: bool) -> bool:
        """Release the run's concurrent slot. Idempotent: True only the first time."""

    def heartbeat(self, org_slug: str, run_id: str) -> None:
        """Extend the run's lease while it is alive."""

    def reconcile(self) -> int:
        """The reaper's pass: free expired leases, resync caches; returns leases freed."""


class AllowAllGate:
    """Admits every run (PIPELINE_OPS_QUOTA=off). The default is quota.gate.LedgerGate."""

    def reserve(self, org_slug: str, run_id: str) -> None:
        return None

    def release(self, org_slug: str, run_id: str, succeeded: bool) -> bool:
        return True

    def heartbeat(self, org_slug: str, run_id: str) -> None:
        return None

    def reconcile(self) -> int:
        return 0
