"""The durable quota ledger: one row per org, one lease row per reserved run.

A reservation is ONE conditional UPDATE that checks all three limits, rolls the daily
counter at UTC midnight and the monthly one at the UTC month start, and increments,
returning the new counters. Zero rows means a limit is reached; a follow-up read in
the same transaction names it. PostgreSQL re-checks the WHERE against the row a
concurrent winner committed, and SQLite holds its write lock from the first statement,
so on both the counters can't pass a limit however many processes race.

Plan changes are seen by every process at once: the row carries a plan epoch that
every change made through the gate bumps, and the reservation UPDATE matches only
the epoch the caller's plan was read at. A plan cached before a change, by any
process, makes the UPDATE match nothing and the caller read the plan again
(`PlanChanged`), however long its cache had left to live and whether or not Redis
(which caches nothing of the plan) is up.

Releases are exactly once: the lease's `released_at` flips from NULL in the same
transaction that decrements the org's running count; a second release finds nothing
to flip. Statements always touch the lease before the ledger row, so PostgreSQL
transactions lock in one order and can't deadlock each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, case, insert, select, update

from pipeline_ops_core.errors import QuotaExceededError, TransientError
from quota.models import dialect_insert, org_quota_leases, org_quota_ledger
from quota.periods import as_utc, day_of, month_of
from quota.plans import Plan
from quota.usage import Lease, Usage

L, LS = org_quota_ledger, org_quota_leases
EXPIRED = "expired"

# Built once with bind parameters (b_ prefixed, so none collides with a column name).
_RESERVE = (
    update(L)
    .where(
        L.c.org_slug == bindparam("b_org"),
        L.c.plan_epoch == bindparam("b_epoch"),
        L.c.concurrent_running < bindparam("b_concurrent"),
        # The count in the current period: a row last touched yesterday has used none of
        # today's runs, and that still leaves no room under a limit of 0.
        case((L.c.day == bindparam("b_day"), L.c.daily_runs), else_=0) < bindparam("b_daily"),
        case((L.c.month == bindparam("b_month"), L.c.monthly_runs), else_=0)
        < bindparam("b_monthly"),
    )
    .values(
        daily_runs=case((L.c.day == bindparam("b_day"), L.c.daily_runs + 1), else_=1),
        monthly_runs=case((L.c.month == bindparam("b_month"), L.c.monthly_runs + 1), else_=1),
        day=bindparam("b_day"),
        month=bindparam("b_month"),
        concurrent_running=L.c.concurrent_running + 1,
        updated_at=bindparam("b_now"),
    )
    .returning(L.c.daily_runs, L.c.monthly_runs, L.c.concurrent_running)
)
# Free `b_n` slots and count outcomes: used by release, late outcomes and the sweep.
_COUNT = (
    update(L)
    .where(L.c.org_slug == bindparam("b_org"))
    .values(
        concurrent_running=case(
            (L.c.concurrent_running > bindparam("b_n"), L.c.concurrent_running - bindparam("b_n")),
            else_=0,
        ),
        succeeded_runs=L.c.succeeded_runs + bindparam("b_ok"),
        failed_runs=L.c.failed_runs + bindparam("b_failed"),
        updated_at=bindparam("b_now"),
    )
)
_SWEEP = (
    update(LS)
    .where(
        LS.c.org_slug == bindparam("b_org"),
        LS.c.released_at.is_(None),
        LS.c.expires_at <= bindparam("b_now"),
    )
    .values(released_at=bindparam("b_now"), outcome=EXPIRED)
)
_RELEASE = (
    update(LS)
    .where(LS.c.run_id == bindparam("b_run"), LS.c.released_at.is_(None))
    .values(released_at=bindparam("b_now"), outcome=bindparam("b_outcome"))
    .returning(LS.c.org_slug)
)
# A lease that expired before its run ended still learns the outcome, once.
_LATE_OUTCOME = (
    update(LS)
    .where(LS.c.run_id == bindparam("b_run"), LS.c.outcome == EXPIRED)
    .values(outcome=bindparam("b_outcome"))
    .returning(LS.c.org_slug)
)
_HEARTBEAT = (
    update(LS)
    .where(
        LS.c.run_id == bindparam("b_run"),
        LS.c.released_at.is_(None),
        LS.c.expires_at > bindparam("b_now"),  # an expired lease is gone, not revived
    )
    .values(expires_at=bindparam("b_until"))
)
_INSERT_LEASE = insert(LS)
_ROW = select(L).where(L.c.org_slug == bindparam("b_org"))
_EPOCH = select(L.c.plan_epoch).where(L.c.org_slug == bindparam("b_org"))
_ENDED_SINCE = select(LS.c.run_id).where(
    LS.c.org_slug == bindparam("b_org"),
    LS.c.released_at.is_not(None),
    LS.c.expires_at > bindparam("b_after"),
)
_ACTIVE_LEASES = (
    select(LS.c.run_id, LS.c.acquired_at, LS.c.expires_at)
    .where(
        LS.c.org_slug == bindparam("b_org"),
        LS.c.released_at.is_(None),
        LS.c.expires_at > bindparam("b_now"),
    )
    .order_by(LS.c.expires_at)
)


class PlanChanged(Exception):
    """The org's plan changed after the caller read it: read it again and retry."""

    def __init__(self, org_slug: str, epoch: int) -> None:
        super().__init__(f"the plan of {org_slug} changed (epoch {epoch})")
        self.epoch = epoch


class SqlLedger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- reserve ---------------------------------------------------------------------------

    def reserve(
        self, plan: Plan, run_id: str, now: datetime, lease_until: datetime, epoch: int
    ) -> Usage:
        """Take a slot for `run_id` or raise QuotaExceededError naming the limit.

        `epoch` is the plan epoch `plan` was read at; PlanChanged if it is not current.
        """
        org = plan.org_slug
        params = {
            "b_org": org,
            "b_epoch": epoch,
            "b_concurrent": plan.concurrent_limit,
            "b_daily": plan.daily_limit,
            "b_monthly": plan.monthly_limit,
            "b_day": day_of(now),
            "b_month": month_of(now),
            "b_now": now,
        }
        refusal: QuotaExceededError | None = None
        with self.engine.begin() as conn:
            # A write first: SQLite takes its write lock here, not on a later upgrade.
            self._sweep(conn, org, now)
            for _ in range(3):
                row = conn.execute(_RESERVE, params).first()
                if row is not None:
                    conn.execute(
                        _INSERT_LEASE,
                        {
                            "run_id": run_id,
                            "org_slug": org,
                            "acquired_at": now,
                            "expires_at": lease_until,
                        },
                    )
                    return Usage(org, day_of(now), month_of(now), row[0], row[1], row[2])
                current = self._read(conn, org, now)
                if current is None:
                    self._create_row(conn, org, now)
                    continue
                if current.plan_epoch != epoch:
                    # Refusing by a plan no longer in force would be as wrong as admitting.
                    raise PlanChanged(org, current.plan_epoch)
                refusal = current.refusal(plan, now)
                if refusal is not None:
                    break
                # PostgreSQL: a release committed between the UPDATE and the read.
        # Leaving the block commits the sweep; the refusal itself changed nothing.
        if refusal is None:
            raise TransientError("the quota ledger is busy; retry", retry_after=1)
        raise refusal

    def _create_row(self, conn: Connection, org: str, now: datetime) -> None:
        # Race-safe lazy insert: two first reservations of an org both get here.
        stmt = dialect_insert(conn, L).values(
            org_slug=org, day=day_of(now), month=month_of(now), updated_at=now
        )
        conn.execute(stmt.on_conflict_do_nothing(index_elements=["org_slug"]))

    def _sweep(self, conn: Connection, org: str, now: datetime) -> int:
        """Release the org's leases that expired: their runs stopped renewing them."""
        expired = conn.execute(_SWEEP, {"b_org": org, "b_now": now}).rowcount
        if expired:
            conn.execute(
                _COUNT, {"b_org": org, "b_n": expired, "b_ok": 0, "b_failed": 0, "b_now": now}
            )
        return int(expired)

    def sweep(self, now: datetime) -> int:
        """Release expired leases of every org (the reaper calls this through the gate)."""
        released = 0
        for org in self.orgs():
            with self.engine.begin() as conn:
                released += self._sweep(conn, org, now)
        return released

    # -- plan epoch ------------------------------------------------------------------------

    def plan_epoch(self, org: str) -> int:
        """The org's current plan epoch (0 before its first reservation or plan change)."""
        with self.engine.connect() as conn:
            return int(conn.execute(_EPOCH, {"b_org": org}).scalar() or 0)

    def bump_plan_epoch(self, org: str, now: datetime) -> int:
        """Mark the org's plan as changed; returns the new epoch. Call after the change
        is stored, so that whoever reads the new epoch reads the new plan."""
        with self.engine.begin() as conn:
            stmt = dialect_insert(conn, L).values(
                org_slug=org, day=day_of(now), month=month_of(now), updated_at=now, plan_epoch=1
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=["org_slug"], set_={"plan_epoch": L.c.plan_epoch + 1}
            ).returning(L.c.plan_epoch)
            return int(conn.execute(stmt).scalar_one())

    # -- release and heartbeat -------------------------------------------------------------

    def release(self, run_id: str, succeeded: bool, now: datetime) -> bool:
        """End the run's lease. True only for the call that actually freed the slot."""
        outcome = "succeeded" if succeeded else "failed"
        counts = {"b_ok": int(succeeded), "b_failed": int(not succeeded), "b_now": now}
        with self.engine.begin() as conn:
            params = {"b_run": run_id, "b_now": now, "b_outcome": outcome}
            org = conn.execute(_RELEASE, params).scalar()
            if org is not None:
                conn.execute(_COUNT, {"b_org": org, "b_n": 1, **counts})
                return True
            org = conn.execute(_LATE_OUTCOME, params).scalar()
            if org is not None:  # its slot went when the lease expired; count the outcome
                conn.execute(_COUNT, {"b_org": org, "b_n": 0, **counts})
        return False

    def heartbeat(self, run_id: str, now: datetime, until: datetime) -> bool:
        with self.engine.begin() as conn:
            params = {"b_run": run_id, "b_now": now, "b_until": until}
            return bool(conn.execute(_HEARTBEAT, params).rowcount)

    # -- reads -----------------------------------------------------------------------------

    def _read(self, conn: Connection, org: str, now: datetime) -> Usage | None:
        row = conn.execute(_ROW, {"b_org": org}).mappings().first()
        if row is None:
            return None
        leases = [
            Lease(r.run_id, as_utc(r.acquired_at), as_utc(r.expires_at))
            for r in conn.execute(_ACTIVE_LEASES, {"b_org": org, "b_now": now})
        ]
        return usage_from_row(row, now, leases)

    def snapshot(self, org: str, now: datetime) -> Usage:
        """The org's usage now: counters rolled to today, only unexpired leases running."""
        with self.engine.connect() as conn:
            usage = self._read(conn, org, now)
        if usage is None:
            return Usage(org, day_of(now), month_of(now), 0, 0, 0)
        # Expired leases not yet swept still sit in concurrent_running; they don't count.
        return Usage(
            org,
            usage.day,
            usage.month,
            usage.daily_runs,
            usage.monthly_runs,
            len(usage.leases),
            usage.succeeded_runs,
            usage.failed_runs,
            usage.leases,
            usage.plan_epoch,
        )

    def ended_since(self, org: str, after: datetime) -> list[str]:
        """Run ids of the org's released leases whose lease ran past `after`."""
        with self.engine.connect() as conn:
            params = {"b_org": org, "b_after": after}
            return list(conn.execute(_ENDED_SINCE, params).scalars())

    def orgs(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(L.c.org_slug).order_by(L.c.org_slug)).scalars())


def usage_from_row(row: Mapping[Any, Any], now: datetime, leases: list[Lease]) -> Usage:
    today, this_month = day_of(now), month_of(now)
    return Usage(
        org_slug=row["org_slug"],
        day=today,
        month=this_month,
        daily_runs=row["daily_runs"] if row["day"] == today else 0,
        monthly_runs=row["monthly_runs"] if row["month"] == this_month else 0,
        concurrent_running=row["concurrent_running"],
        succeeded_runs=row["succeeded_runs"],
        failed_runs=row["failed_runs"],
        leases=leases,
        plan_epoch=row["plan_epoch"],
    )
