"""A short-TTL cache in front of a PlanSource.

Every reservation needs the org's plan; Supabase is a network hop away, so plans are
kept for `ttl` seconds (PIPELINE_OPS_PLAN_CACHE_SECONDS). When the source is down
(TransientError) the last value is served, even past its TTL: a plan rarely changes,
and refusing every run because Supabase blinked would be worse than a stale limit.
Unless the plan is known to have changed since: then the outage is raised.

Each entry remembers the plan *version* that was current before it was fetched (the
ledger's plan epoch, bumped by every admin change), so the gate can see that a cached
plan is older than a change made by another process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pipeline_ops_core.errors import TransientError
from quota.plans import Plan, PlanDefaults, PlanSource

log = logging.getLogger("pipeline_ops.quota")

# After a failed refresh, how long the stale value is served before trying again.
RETRY_SECONDS = 5.0


@dataclass(frozen=True)
class CachedPlan:
    plan: Plan
    version: int | None  # None: fetched without a version reader
    fetched_at: float


class PlanCache:
    def __init__(
        self,
        source: PlanSource,
        defaults: PlanDefaults,
        ttl: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.defaults = defaults
        self.ttl = ttl
        self.monotonic = monotonic
        self._entries: dict[str, CachedPlan] = {}
        self._lock = threading.Lock()

    def get(self, org_slug: str, version: Callable[[], int] | None = None) -> CachedPlan:
        entry = self._entries.get(org_slug)
        if entry is not None and self.monotonic() - entry.fetched_at < self.ttl:
            return entry
        return self.refresh(org_slug, version)

    def refresh(self, org_slug: str, version: Callable[[], int] | None = None) -> CachedPlan:
        # The version is read *before* the plan: a change landing in between then
        # shows up as a newer version than ours, never the other way round.
        tag = version() if version is not None else None
        try:
            plan = self.source.get(org_slug)
        except TransientError as exc:
            stale = self._entries.get(org_slug)
            if stale is None or (tag is not None and stale.version != tag):
                # Nothing to fall back on, or what we have is known to be outdated.
                raise
            log.warning("plan source unavailable, using the cached plan of %s: %s", org_slug, exc)
            retry_at = self.monotonic() - self.ttl + min(self.ttl, RETRY_SECONDS)
            kept = CachedPlan(stale.plan, stale.version, retry_at)
            with self._lock:
                self._entries[org_slug] = kept
            return kept
        entry = CachedPlan(plan or self.defaults.plan(org_slug), tag, self.monotonic())
        with self._lock:
            self._entries[org_slug] = entry
        return entry

    def invalidate(self, org_slug: str | None = None) -> None:
        with self._lock:
            if org_slug is None:
                self._entries.clear()
            else:
                self._entries.pop(org_slug, None)
