"""Quota exactness as a property: a Hypothesis state machine drives the real gate.

Three gates stand in for three processes: each is built by the production factory from
its own settings, with its own plan cache, SQL engine and Redis connection pool, over one
metadata DB (SQLite or PostgreSQL) and one real redis-server. Two read their plans from
the DB's `org_subscriptions` table, the third from Supabase (supabase-py against a local
PostgREST double that serves the very same table, as Supabase does in production).

Rules: reserve, release, heartbeat; plan changes (limits up and down, suspended and
active again) through the admin API of any process; usage reads (`gate.usage()`) and
admin quota reads (`GET /admin/orgs/ORG/quota`); the reaper's `reconcile()`; FLUSHALL,
redis-server restarted, stopped for a while and started again; time moved by hand
past the plan cache's TTL, past a lease, to UTC midnight and to the month start.

A model of what was admitted and released says what must happen. Checked at every
step:
- at each admission, the org's active runs (reserved, not released, lease not expired),
  the new one included, fit the concurrent limit last set, and its runs today and this
  month fit the daily and monthly limits last set; the subscription admits;
- a refusal is exact too: it names the limit the model has reached, with the value last
  set and the count the model has (no stale plan refuses a run either);
- the ledger's daily/monthly counters equal the admissions in the period, its active
  leases are the model's, its running count matches its lease rows;
- a release frees a slot exactly once (True the first time for a live lease, False
  after), and counts the run's outcome exactly once;
- after `reconcile()`, the Redis mirror holds what the ledger holds.

`make test` runs a seeded, bounded version; `make soak` the same machine longer
(QUOTA_SOAK_EXAMPLES, QUOTA_SOAK_STEPS).
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from flask import Flask
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine, delete, func, select

from app import create_app
from pipeline.bootstrap import Services, build_services
from pipeline.settings import Settings
from pipeline.storage.db import make_engine, upgrade
from pipeline_ops_core.errors import QuotaExceededError, SubscriptionInactiveError
from quota import periods
from quota.factory import build_ledger_gate
from quota.gate import LedgerGate
from quota.ledger import SqlLedger
from quota.mirror import MirrorUnavailable
from quota.models import dialect_insert, org_quota_leases, org_quota_ledger, org_subscriptions
from quota.plans import ADMITTING, STATUSES
from tests.integration.conftest import ROOT
from tests.integration.test_quota_supabase import KEY, FakePostgREST
from tests.support.doubles import ManualClock, NullDispatcher
from tests.support.servers import Server, app_env, create_pg_database, start_redis

ORGS = ("acme", "globex")
# Two minutes before a UTC midnight that is also a month end: both rollovers are a
# couple of rules away.
T0 = datetime(2026, 1, 31, 23, 58, tzinfo=UTC)
LEASE = 120
CACHE_TTL = 30
DEFAULTS = {"concurrent_limit": 2, "daily_limit": 8, "monthly_limit": 16, "status": "ACTIVE"}
ADMIN_KEY = "admin-key-for-the-quota-machine"
PROCESSES = ("p0-database", "p1-database", "p2-supabase")
PROCESS = st.integers(0, len(PROCESSES) - 1)
READS = ("gate.usage()", "GET /admin/orgs/ORG/quota")
TIME_MOVES = {
    "1s": 1,
    "3s": 3,
    "6s": 6,  # past the Redis circuit breaker's retry interval (5 s)
    "cache TTL": CACHE_TTL + 1,
    "lease": LEASE + 1,
    "midnight": 0,
    "month start": 0,
}

SOAK_EXAMPLES = os.environ.get("QUOTA_SOAK_EXAMPLES")
if SOAK_EXAMPLES:
    # `make soak`: explores afresh each run; what fails is kept in Hypothesis's example
    # database (under $HYPOTHESIS_STORAGE_DIRECTORY, see tests/conftest.py, not in the
    # repository) and replayed first next time.
    MACHINE_SETTINGS = settings(
        max_examples=int(SOAK_EXAMPLES),
        stateful_step_count=int(os.environ.get("QUOTA_SOAK_STEPS") or 100),
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
else:
    # `make test`: the same examples every run, about a minute for both backends.
    MACHINE_SETTINGS = settings(
        max_examples=40,
        stateful_step_count=50,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )


class SqlRows(MutableMapping[str, dict[str, Any]]):
    """The PostgREST double's rows, kept in the metadata DB's `org_subscriptions`.

    In production the metadata DB is the Supabase database: a plan changed through
    PostgREST is the row the database plan source reads, and the other way round.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __getitem__(self, org: str) -> dict[str, Any]:
        query = select(org_subscriptions).where(org_subscriptions.c.org_slug == org)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            raise KeyError(org)
        return {**row, "updated_at": row["updated_at"].isoformat()}

    def __setitem__(self, org: str, row: dict[str, Any]) -> None:
        values = {column.name: row[column.name] for column in org_subscriptions.columns}
        values["updated_at"] = datetime.fromisoformat(values["updated_at"])
        with self.engine.begin() as conn:
            stmt = dialect_insert(conn, org_subscriptions).values(**values)
            conn.execute(stmt.on_conflict_do_update(index_elements=["org_slug"], set_=values))

    def __delitem__(self, org: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(org_subscriptions).where(org_subscriptions.c.org_slug == org))

    def __iter__(self) -> Iterator[str]:
        with self.engine.connect() as conn:
            return iter(list(conn.execute(select(org_subscriptions.c.org_slug)).scalars()))

    def __len__(self) -> int:
        return len(list(iter(self)))


@dataclass
class Process:
    """One API process: its settings, its services (whose gate each example replaces)
    and its Flask app."""

    name: str
    settings: Settings
    services: Services
    app: Flask


@dataclass
class QuotaWorld:
    kind: str
    engine: Engine
    redis: Server
    postgrest: FakePostgREST
    processes: list[Process] = field(default_factory=list)

    def restart_redis(self) -> None:
        port = self.redis.port
        self.redis.stop()
        self.redis = start_redis(port)

    def stop_redis(self) -> None:
        self.redis.stop()

    def start_redis(self) -> None:
        self.redis = start_redis(self.redis.port)

    def redis_client(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis.url)

    def reset(self) -> None:
        """A clean slate for the next example: no plans, no ledger, an empty Redis."""
        with self.engine.begin() as conn:
            for table in (org_quota_leases, org_quota_ledger, org_subscriptions):
                conn.execute(delete(table))
        if self.redis.proc is None or self.redis.proc.poll() is not None:
            self.start_redis()
        with self.redis_client() as client:
            client.flushall()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def quota_world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[QuotaWorld]:
    tmp = tmp_path_factory.mktemp(f"quota-machine-{request.param}")
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_server")
        db_url = create_pg_database(server, f"quota_machine_{uuid.uuid4().hex[:12]}")
    else:
        db_url = f"sqlite:///{tmp / 'meta.db'}"
    upgrade(db_url)
    engine = make_engine(db_url)
    postgrest = FakePostgREST()
    postgrest.rows = SqlRows(engine)  # type: ignore[assignment]
    world = QuotaWorld(request.param, engine, start_redis(), postgrest)
    try:
        for name in PROCESSES:
            env = {
                **app_env(tmp, db_url, world.redis.url, ROOT / "configs"),
                "PIPELINE_OPS_ADMIN_KEY": ADMIN_KEY,
                "PIPELINE_OPS_PLAN_CACHE_SECONDS": str(CACHE_TTL),
                "PIPELINE_OPS_QUOTA_LEASE_SECONDS": str(LEASE),
                "PIPELINE_OPS_DEFAULT_CONCURRENT_LIMIT": str(DEFAULTS["concurrent_limit"]),
                "PIPELINE_OPS_DEFAULT_DAILY_LIMIT": str(DEFAULTS["daily_limit"]),
                "PIPELINE_OPS_DEFAULT_MONTHLY_LIMIT": str(DEFAULTS["monthly_limit"]),
            }
            if name.endswith("supabase"):
                env |= {"SUPABASE_URL": postgrest.url, "SUPABASE_SERVICE_ROLE_KEY": KEY}
            proc_settings = Settings.from_env(env)
            services = build_services(proc_settings, NullDispatcher())
            world.processes.append(
                Process(name, proc_settings, services, create_app(proc_settings, services))
            )
        for org in ORGS:
            world.processes[0].services.orgs.create(org)
        yield world
    finally:
        # Whichever redis-server the last example left: the machine restarts it.
        world.redis.stop()
        postgrest.close()
        for process in world.processes:
            process.services.store.engine.dispose()
        engine.dispose()


@dataclass
class Run:
    org: str
    admitted: bool
    expires_at: datetime
    released: bool = False


class QuotaMachine(RuleBasedStateMachine):
    runs = Bundle("runs")

    def __init__(self, world: QuotaWorld) -> None:
        super().__init__()
        self.world = world
        world.reset()
        self.clock = ManualClock(T0)
        self.gates: list[LedgerGate] = []
        for process in world.processes:
            gate = build_ledger_gate(process.settings, process.services.store.engine, self.clock)
            # The plan cache and the Redis circuit breaker run on this machine's time too.
            gate.plans.monotonic = self.monotonic
            assert gate.mirror is not None
            gate.mirror.monotonic = self.monotonic
            # The admin API of this process uses this gate (its plan cache included), for
            # admissions and for plan administration alike.
            process.services.gate = gate
            process.services.plans = gate
            self.gates.append(gate)
        self.ledger = SqlLedger(world.engine)
        self.plans = {org: dict(DEFAULTS) for org in ORGS}
        self.model: dict[str, Run] = {}
        self.admissions: list[tuple[str, datetime]] = []
        self.outcomes = {org: Counter[str]() for org in ORGS}
        self.redis_up = True
        self.serial = 0

    def monotonic(self) -> float:
        return (self.clock.now - T0).total_seconds()

    def teardown(self) -> None:
        for gate in self.gates:
            assert gate.mirror is not None
            gate.mirror.client.close()
            gate.mirror.client.connection_pool.disconnect()

    # -- the model -------------------------------------------------------------------------

    def active(self, org: str) -> dict[str, datetime]:
        now = self.clock.now
        return {
            run_id: run.expires_at
            for run_id, run in self.model.items()
            if run.org == org and run.admitted and not run.released and run.expires_at > now
        }

    def counts(self, org: str) -> tuple[int, int, int]:
        now = self.clock.now
        day, month = periods.day_of(now), periods.month_of(now)
        daily = sum(1 for o, at in self.admissions if o == org and periods.day_of(at) == day)
        monthly = sum(1 for o, at in self.admissions if o == org and periods.month_of(at) == month)
        return daily, monthly, len(self.active(org))

    def expected_refusal(self, org: str) -> tuple[str, int, int] | None:
        plan = self.plans[org]
        daily, monthly, running = self.counts(org)
        for limit, current in (("monthly", monthly), ("daily", daily), ("concurrent", running)):
            if current >= plan[f"{limit}_limit"]:
                return limit, plan[f"{limit}_limit"], current
        return None

    def expected_plan(self, org: str) -> dict[str, Any]:
        return {"org_slug": org, **self.plans[org]}

    # -- reserve, release, heartbeat -------------------------------------------------------

    @rule(
        target=runs,
        process=PROCESS,
        org=st.sampled_from(ORGS),
        burst=st.integers(1, 3),
    )
    def reserve(self, process: int, org: str, burst: int) -> MultipleResults[str]:
        """`burst` reservations in a row through one process, as a burst of requests."""
        return multiple(*(self.reserve_one(process, org) for _ in range(burst)))

    def reserve_one(self, process: int, org: str) -> str:
        self.serial += 1
        run_id = f"run{self.serial}"
        plan = self.plans[org]
        expected = self.expected_refusal(org)
        try:
            self.gates[process].reserve(org, run_id)
        except SubscriptionInactiveError:
            assert plan["status"] not in ADMITTING, (
                f"refused {run_id} of {org} as inactive, but its plan is {plan}"
            )
            admitted = False
        except QuotaExceededError as exc:
            assert plan["status"] in ADMITTING, f"{org} is {plan['status']}: refusal {exc}"
            got = (exc.limit, exc.limit_value, exc.current)
            assert got == expected, (
                f"refused {run_id} of {org} with {got}; the limits last set ({plan}) "
                f"and the runs admitted say {expected or 'there is room'}"
            )
            admitted = False
        else:
            assert plan["status"] in ADMITTING, f"admitted {run_id} of {org}: it is {plan}"
            assert expected is None, (
                f"admitted {run_id} of {org} beyond the limits last set ({plan}): "
                f"{expected[0]} {expected[2]} of {expected[1]} already used"
            )
            admitted = True
            self.admissions.append((org, self.clock.now))
        self.model[run_id] = Run(org, admitted, self.clock.now + timedelta(seconds=LEASE))
        return run_id

    def holding(self) -> list[str]:
        """Runs admitted and not released (their lease may have expired)."""
        return [r for r, run in self.model.items() if run.admitted and not run.released]

    @precondition(lambda self: self.holding())
    @rule(process=PROCESS, pick=st.integers(0, 2**16), succeeded=st.booleans())
    def run_ends(self, process: int, pick: int, succeeded: bool) -> None:
        """A run that holds a slot ends and its process releases it."""
        holding = self.holding()
        self.release(process, holding[pick % len(holding)], succeeded)

    @rule(process=PROCESS, run_id=runs, succeeded=st.booleans())
    def release_any(self, process: int, run_id: str, succeeded: bool) -> None:
        """Any run's release, again or for a run that was refused: frees nothing."""
        self.release(process, run_id, succeeded)

    def release(self, process: int, run_id: str, succeeded: bool) -> None:
        run = self.model[run_id]
        freed = self.gates[process].release(run.org, run_id, succeeded)
        if not run.admitted or run.released:
            assert freed is False, f"{run_id} released twice (or never admitted) yet freed"
        elif run.expires_at > self.clock.now:
            assert freed is True, f"releasing the live lease of {run_id} freed nothing"
        # (an expired lease: its slot went with the lease; True only if not swept yet)
        if run.admitted and not run.released:
            self.outcomes[run.org]["succeeded" if succeeded else "failed"] += 1
        run.released = True

    @precondition(lambda self: self.holding())
    @rule(process=PROCESS, pick=st.integers(0, 2**16))
    def heartbeat(self, process: int, pick: int) -> None:
        """A running run renews its lease (an expired one is not revived)."""
        holding = self.holding()
        run_id = holding[pick % len(holding)]
        run = self.model[run_id]
        self.gates[process].heartbeat(run.org, run_id)
        if run.expires_at > self.clock.now:
            run.expires_at = self.clock.now + timedelta(seconds=LEASE)

    # -- plans, usage, reconciliation ------------------------------------------------------

    @rule(
        process=PROCESS,
        org=st.sampled_from(ORGS),
        change=st.fixed_dictionaries(
            {},
            optional={
                "concurrent_limit": st.integers(0, 4),
                "daily_limit": st.integers(0, 12),
                "monthly_limit": st.integers(0, 24),
                "status": st.sampled_from(STATUSES),
            },
        ).filter(bool),
    )
    def set_limits(self, process: int, org: str, change: dict[str, Any]) -> None:
        app = self.world.processes[process].app
        response = app.test_client().put(
            f"/admin/orgs/{org}/limits", json=change, headers={"X-Admin-Key": ADMIN_KEY}
        )
        assert response.status_code == 200, response.get_json()
        self.plans[org].update(change)
        body = response.get_json()
        body.pop("source")
        assert body == self.expected_plan(org)

    def check_report(self, report: Mapping[str, Any], org: str) -> None:
        plan = dict(report["plan"])
        plan.pop("source")
        assert plan == self.expected_plan(org), "the usage report shows a plan not in force"
        usage = report["usage"]
        daily, monthly, running = self.counts(org)
        assert (usage["daily_runs"], usage["monthly_runs"]) == (daily, monthly)
        assert usage["concurrent_running"] == running
        assert sorted(lease["run_id"] for lease in usage["leases"]) == sorted(self.active(org))

    @rule(process=PROCESS, org=st.sampled_from(ORGS), via=st.sampled_from(READS))
    def read_usage(self, process: int, org: str, via: str) -> None:
        """An operator reads the org's usage: `quota show` (gate.usage) or the admin API."""
        if via == "gate.usage()":
            self.check_report(self.gates[process].usage(org), org)
            return
        app = self.world.processes[process].app
        response = app.test_client().get(
            f"/admin/orgs/{org}/quota", headers={"X-Admin-Key": ADMIN_KEY}
        )
        assert response.status_code == 200, response.get_json()
        self.check_report(response.get_json(), org)

    @rule(process=PROCESS)
    def reconcile(self, process: int) -> None:
        gate = self.gates[process]
        assert gate.mirror is not None
        gate.reconcile()
        now = self.clock.now
        with self.world.engine.connect() as conn:
            unswept = conn.execute(
                select(func.count())
                .select_from(org_quota_leases)
                .where(
                    org_quota_leases.c.released_at.is_(None),
                    org_quota_leases.c.expires_at <= now,
                )
            ).scalar()
        assert unswept == 0, "reconcile left expired leases holding their slots"
        if not (self.redis_up and gate.mirror.available()):
            return  # the reaper could not reach Redis: nothing to compare
        orgs = set(self.ledger.orgs())
        for org in ORGS:
            try:
                mirror = gate.mirror.state(org, now)
            except MirrorUnavailable:
                return
            ledger = self.ledger.snapshot(org, now)
            assert sorted(mirror["leases"]) == sorted(lease.run_id for lease in ledger.leases), (
                f"after reconcile the mirror of {org} holds {mirror}, the ledger {ledger}"
            )
            assert (mirror["daily_runs"], mirror["monthly_runs"]) == (
                ledger.daily_runs,
                ledger.monthly_runs,
            ), f"after reconcile the mirror of {org} counts {mirror}, the ledger {ledger}"
            assert mirror["ready"] or org not in orgs

    # -- redis and time ------------------------------------------------------------------

    @precondition(lambda self: self.redis_up)
    @rule(action=st.sampled_from(["FLUSHALL", "restart", "stop"]))
    def redis_trouble(self, action: str) -> None:
        """FLUSHALL; redis-server stopped and started again empty at once; or stopped
        until a later `redis_back`."""
        if action == "FLUSHALL":
            with self.world.redis_client() as client:
                client.flushall()
        elif action == "restart":
            self.world.restart_redis()
        else:
            self.world.stop_redis()
            self.redis_up = False

    @precondition(lambda self: not self.redis_up)
    @rule()
    def redis_back(self) -> None:
        self.world.start_redis()
        self.redis_up = True

    @rule(move=st.sampled_from(list(TIME_MOVES)))
    def time_passes(self, move: str) -> None:
        """A few seconds; past the plan cache TTL; past a lease; to UTC midnight; to the
        month start."""
        now = self.clock.now
        if move == "midnight":
            self.clock.now = periods.next_day(now)
        elif move == "month start":
            self.clock.now = periods.next_month(now)
        else:
            self.clock.advance(TIME_MOVES[move])

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def the_ledger_is_the_model(self) -> None:
        now = self.clock.now
        for org in ORGS:
            usage = self.ledger.snapshot(org, now)
            daily, monthly, _ = self.counts(org)
            assert (usage.daily_runs, usage.monthly_runs) == (daily, monthly), (
                f"{org}: the ledger counts {usage.daily_runs} today and {usage.monthly_runs} "
                f"this month; {daily} and {monthly} were admitted"
            )
            assert {lease.run_id: lease.expires_at for lease in usage.leases} == self.active(org)
            outcomes = self.outcomes[org]
            assert (usage.succeeded_runs, usage.failed_runs) == (
                outcomes["succeeded"],
                outcomes["failed"],
            ), f"{org}: each release counts its run's outcome once"
            with self.world.engine.connect() as conn:
                unreleased = conn.execute(
                    select(func.count())
                    .select_from(org_quota_leases)
                    .where(
                        org_quota_leases.c.org_slug == org,
                        org_quota_leases.c.released_at.is_(None),
                    )
                ).scalar()
                running = conn.execute(
                    select(org_quota_ledger.c.concurrent_running).where(
                        org_quota_ledger.c.org_slug == org
                    )
                ).scalar()
            assert (running or 0) == unreleased, (
                f"{org}: the ledger row says {running} running, {unreleased} leases are held"
            )


def test_the_quota_is_exact_under_any_interleaving(quota_world: QuotaWorld) -> None:
    run_state_machine_as_test(lambda: QuotaMachine(quota_world), settings=MACHINE_SETTINGS)
