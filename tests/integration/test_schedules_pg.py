"""Two schedule dispatchers at once against PostgreSQL: exactly one run per tick.

Each dispatcher has its own services and connection pool, as two beat-driven
workers would; a barrier releases them on the same tick at the same moment.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from pipeline.bootstrap import Services, build_services
from pipeline.schedules.dispatch import ScheduleDispatcher, TickReport
from pipeline.schedules.service import ScheduleService
from pipeline.settings import Settings
from pipeline.storage.db import upgrade
from pipeline.storage.tables import dispatches
from tests.integration.conftest import write_configs
from tests.support.doubles import ManualClock as Clock
from tests.support.doubles import NullDispatcher
from tests.support.servers import Server, create_pg_database

DAILY = """\
pipeline_id: sched_pg_daily
name: Daily at 03:00
provider: sched
domain: pg
schedule: "0 3 * * *"
steps:
  - step_id: only
    ps_type: generic.noop
"""
ORGS = [f"org_{n:02d}" for n in range(12)]
DAYS = 3


@pytest.fixture
def pg_settings(postgres_server: Server, tmp_path: Path) -> Settings:
    configs = write_configs(tmp_path, "sched/pg/daily", DAILY)
    url = create_pg_database(postgres_server, f"po_sched_{tmp_path.name[-12:]}".lower())
    upgrade(url)
    return Settings(
        var_dir=tmp_path,
        database_url=url,
        redis_url="redis://127.0.0.1:1/0",
        warehouse_url=f"duckdb:///{tmp_path / 'w.duckdb'}",
        configs_dir=configs,
    )


def test_two_dispatchers_at_once_start_one_run_per_tick(pg_settings: Settings) -> None:
    clock = Clock(datetime(2026, 3, 1, 2, 0, tzinfo=UTC))
    beats: list[tuple[Services, ScheduleDispatcher]] = []
    for name in ("beat-a", "beat-b"):
        svc = build_services(pg_settings, NullDispatcher(), clock=clock, db_time=clock)
        beats.append((svc, ScheduleDispatcher.for_runs(svc.runs, clock=clock, identity=name)))
    admin = beats[0][0]
    for org in ORGS:
        admin.orgs.create(org)
        ScheduleService(admin.store, admin.catalog).enable(org, "sched/pg/daily")

    reports: list[TickReport] = []
    errors: list[BaseException] = []
    for day in range(DAYS):
        clock.now = datetime(2026, 3, 1, 3, 0, 5, tzinfo=UTC) + timedelta(days=day)
        barrier = threading.Barrier(len(beats))

        def run(dispatcher: ScheduleDispatcher, barrier: threading.Barrier = barrier) -> None:
            try:
                barrier.wait(timeout=10)
                reports.append(dispatcher.tick())
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(d,)) for _, d in beats]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors, errors

    expected = len(ORGS) * DAYS
    assert sum(r.started for r in reports) == expected
    assert sum(r.skipped + r.failed + r.errors for r in reports) == 0
    # They really raced: the losers of some claims saw the winners' records.
    assert sum(r.duplicates for r in reports) > 0
    runs = [r for org in ORGS for r in admin.store.list_runs(org, limit=50)]
    assert len(runs) == expected
    assert {r.trigger for r in runs} == {"schedule"}
    per_tick = {(r.org_slug, r.params["scheduled_time"]) for r in runs}
    assert len(per_tick) == expected  # one run per (org, tick), none twice
    with admin.store.engine.connect() as conn:
        rows = conn.execute(
            select(dispatches.c.status, dispatches.c.dispatcher, func.count()).group_by(
                dispatches.c.status, dispatches.c.dispatcher
            )
        ).all()
    assert sum(n for status, _, n in rows if status == "started") == expected
    assert {status for status, _, _ in rows} == {"started"}
