"""The enforcing QuotaGate: plan source -> Redis mirror (fast, shared) -> SQL ledger (exact).

A reservation runs the Lua `reserve` first and then the ledger's single UPDATE; it is
confirmed in both or taken back from both. The ledger is the authority:

- a mirror refusal is confirmed with a read of the ledger before it is answered; if
  the ledger has room, the mirror was stale (a missed release, a crash between the two
  steps) and is rebuilt from the ledger;
- a mirror admission the ledger refuses is rolled back in Redis, and the mirror,
  which had counted too little, is rebuilt;
- a missing mirror (FLUSHALL, restart) is rebuilt before it counts anything;
- Redis unreachable: the ledger alone decides (degraded, still exact).

Plans are cached per process, tagged with the ledger's plan epoch they were read at.
The ledger only admits with the current epoch, a refusal is confirmed against it, so
a plan change made by any process applies to the next reservation everywhere.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from pipeline_ops_core.errors import QuotaExceededError, SubscriptionInactiveError, TransientError
from quota import periods
from quota.cache import CachedPlan, PlanCache
from quota.ledger import PlanChanged, SqlLedger
from quota.mirror import MirrorUnavailable, RedisMirror
from quota.plans import Plan, changed_plan
from quota.usage import Usage

log = logging.getLogger("pipeline_ops.quota")

MIRROR_ATTEMPTS = 4
# Reads of the plan for one reservation: each retry follows a plan change in between.
PLAN_ATTEMPTS = 4
# A reservation is in the mirror before it is in the ledger for a few milliseconds; a
# lease younger than this that the ledger lacks is taken to be on its way, not lost.
IN_FLIGHT = timedelta(seconds=5)


class LedgerGate:
    def __init__(
        self,
        ledger: SqlLedger,
        plans: PlanCache,
        mirror: RedisMirror | None,
        clock: Callable[[], datetime],
        lease: timedelta,
    ) -> None:
        self.ledger = ledger
        self.plans = plans
        self.mirror = mirror
        self.clock = clock
        self.lease = lease
        # org -> mirror.outages when this process last synced that org's mirror.
        self._synced: dict[str, int] = {}

    # -- QuotaGate -------------------------------------------------------------------------

    def reserve(self, org_slug: str, run_id: str) -> None:
        try:
            self._reserve(org_slug, run_id)
        except (QuotaExceededError, SubscriptionInactiveError) as exc:
            # A refusal records no run: this line (and the API's metric) is its trace.
            log.info("quota refused a run of %s: %s", org_slug, exc)
            raise

    def _reserve(self, org_slug: str, run_id: str) -> None:
        for attempt in range(PLAN_ATTEMPTS):
            cached = self._plan(org_slug, force=attempt > 0)
            try:
                self._reserve_with(cached, run_id)
                return
            except PlanChanged:
                continue  # another process changed the plan since this one read it
        raise TransientError(f"the plan of {org_slug} keeps changing; retry", retry_after=1)

    def _reserve_with(self, cached: CachedPlan, run_id: str) -> None:
        org_slug = cached.plan.org_slug
        now = self.clock()
        until = now + self.lease
        in_mirror = False
        if self.mirror is not None and self.mirror.available():
            try:
                in_mirror = self._mirror_reserve(cached, run_id, now, until)
            except MirrorUnavailable:
                in_mirror = False
        try:
            self.ledger.reserve(cached.plan, run_id, now, until, self._epoch(cached))
        except QuotaExceededError:
            if in_mirror:  # the mirror counted too little: take it back and resync
                self._undo(org_slug, run_id, now, resync=True)
            raise
        except BaseException:
            if in_mirror:
                self._undo(org_slug, run_id, now, resync=False)
            raise

    def release(self, org_slug: str, run_id: str, succeeded: bool) -> bool:
        now = self.clock()
        freed = self.ledger.release(run_id, succeeded, now)
        if self.mirror is not None:
            # If Redis is down the lease expires there, or the next resync drops it.
            with contextlib.suppress(MirrorUnavailable):
                self.mirror.release(org_slug, run_id, now)
        return freed

    def heartbeat(self, org_slug: str, run_id: str) -> None:
        now = self.clock()
        until = now + self.lease
        alive = self.ledger.heartbeat(run_id, now, until)
        if self.mirror is not None and self.mirror.available():
            with contextlib.suppress(MirrorUnavailable):
                if alive:
                    self.mirror.heartbeat(org_slug, run_id, now, until)
                else:  # released or expired in the ledger: the mirror must not keep it
                    self.mirror.release(org_slug, run_id, now)

    def reconcile(self) -> int:
        """Release expired leases everywhere and resync each org's mirror from the ledger."""
        now = self.clock()
        released = self.ledger.sweep(now)
        if self.mirror is not None and self.mirror.available():
            try:
                for org in self.ledger.orgs():
                    self._rebuild(org, now, force=True)
                    self._synced[org] = self.mirror.outages
            except MirrorUnavailable:
                pass
        return released

    @property
    def mirrored(self) -> bool:
        return self.mirror is not None

    # -- administration (PlanAdmin) ----------------------------------------------------------

    def set_limits(
        self,
        org_slug: str,
        *,
        daily: int | None = None,
        monthly: int | None = None,
        concurrent: int | None = None,
        status: str | None = None,
    ) -> Plan:
        """Change the org's plan in its source and drop every cached copy of it."""
        source = self.plans.source
        current = source.get(org_slug) or self.plans.defaults.plan(org_slug)
        plan = replace(
            changed_plan(
                current, daily=daily, monthly=monthly, concurrent=concurrent, status=status
            ),
            source=source.name,
        )
        source.put(plan)
        # After the put: a process that reads the new epoch then reads the new plan.
        # Every process's next reservation sees the new epoch and reads the plan again.
        self.ledger.bump_plan_epoch(org_slug, self.clock())
        self.plans.invalidate(org_slug)
        return plan

    def usage(self, org_slug: str) -> dict[str, Any]:
        """Limits, ledger usage, active leases and the mirror's view, for operators."""
        now = self.clock()
        # Refreshed with its epoch, like every cached plan (the next reservation reuses it).
        plan = self.plans.refresh(org_slug, self._epoch_reader(org_slug)).plan
        report: dict[str, Any] = {
            "org_slug": org_slug,
            "plan": plan.as_dict(),
            "usage": self.ledger.snapshot(org_slug, now).as_dict(),
            "mirror": {"status": self.health()},
        }
        if self.mirror is not None and self.mirror.available():
            try:
                report["mirror"].update(self.mirror.state(org_slug, now))
            except MirrorUnavailable:
                report["mirror"]["status"] = self.health()
        return report

    def health(self) -> str:
        if self.mirror is None:
            return "ledger only (no redis mirror in eager mode)"
        try:
            self.mirror.ping()
        except MirrorUnavailable as exc:
            return f"degraded: redis unavailable, the SQL ledger alone decides ({exc})"
        return "ok"

    # -- internals -------------------------------------------------------------------------

    def _plan(self, org_slug: str, force: bool = False) -> CachedPlan:
        version = self._epoch_reader(org_slug)
        get = self.plans.refresh if force else self.plans.get
        cached = get(org_slug, version)
        if cached.version is None or (not cached.plan.admits and cached.version != version()):
            # No epoch to check it by, or a refusal by a plan that may be outdated: the
            # ledger never sees that refusal, so the epoch is checked here.
            cached = self.plans.refresh(org_slug, version)
        if not cached.plan.admits:
            raise SubscriptionInactiveError(
                f"the subscription of {org_slug} is {cached.plan.status}: runs are not admitted"
            )
        return cached

    def _epoch_reader(self, org_slug: str) -> Callable[[], int]:
        return lambda: self.ledger.plan_epoch(org_slug)

    @staticmethod
    def _epoch(cached: CachedPlan) -> int:
        assert cached.version is not None  # _plan() never returns an untagged plan
        return cached.version

    def _mirror_reserve(
        self, cached: CachedPlan, run_id: str, now: datetime, until: datetime
    ) -> bool:
        """Reserve in Redis; returns whether Redis holds the lease."""
        assert self.mirror is not None
        org = cached.plan.org_slug
        if self._synced.get(org, 0) != self.mirror.outages:
            # Redis was unreachable for a while: releases may have been missed there.
            self._rebuild(org, now, force=True)
            self._synced[org] = self.mirror.outages
        disputed = False
        for _ in range(MIRROR_ATTEMPTS):
            verdict = self.mirror.reserve(cached.plan, run_id, now, until)
            if verdict.kind == "ok":
                return True
            if verdict.kind == "rebuild":
                self._rebuild(org, now, force=False)
            else:
                # A refusal is only as good as the mirror and the plan: confirm both
                # with the ledger.
                usage = self.ledger.snapshot(org, now)
                if usage.plan_epoch != cached.version:
                    raise PlanChanged(org, usage.plan_epoch)
                refusal = usage.refusal(cached.plan, now)
                if refusal is not None:
                    raise refusal
                if disputed:
                    # Just rebuilt, and still full: what the ledger lacks are
                    # reservations on their way to it, which count.
                    raise QuotaExceededError(
                        verdict.limit,
                        verdict.limit_value,
                        verdict.current,
                        periods.retry_after(verdict.limit, now),
                    )
                # The ledger has room the mirror doesn't: a missed release, or a
                # reservation whose process died between the two steps.
                self._rebuild(org, now, force=True, usage=usage)
                disputed = True
        # Racing rebuilds did not settle; this one reservation is the ledger's alone.
        return False

    def _rebuild(self, org: str, now: datetime, force: bool, usage: Usage | None = None) -> None:
        assert self.mirror is not None
        usage = usage or self.ledger.snapshot(org, now)
        # Leases taken in the last IN_FLIGHT seconds may still be on their way to the ledger,
        # unless the ledger has already ended them (a release this mirror missed).
        young_after = now + self.lease - IN_FLIGHT
        # A second early: mirror scores are whole milliseconds.
        ended = self.ledger.ended_since(org, young_after - timedelta(seconds=1))
        self.mirror.rebuild(usage, now, force=force, young_after=young_after, ended=ended)

    def _undo(self, org_slug: str, run_id: str, now: datetime, resync: bool) -> None:
        assert self.mirror is not None
        try:
            self.mirror.release(org_slug, run_id, now, undo_counts=True)
            if resync:
                self._rebuild(org_slug, now, force=True)
        except MirrorUnavailable:
            log.warning("could not take reservation %s back from redis; it resyncs later", run_id)
