"""Retention: `pipeline-ops db prune --older-than 90d` on SQLite and PostgreSQL.

10,000 ended runs (6,000 ended before the cutoff, 4,000 after) and 5 active runs created
long before it, each with a step attempt, a log line, a transition, a quota lease and a
schedule dispatch row. Prune must delete exactly the old ended runs and their rows,
leave the active runs (however old), the newer runs, the running totals of /metrics and
the warehouse as they were, and a dry run must delete nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from sqlalchemy import Engine, create_engine, func, insert, select

from pipeline.settings import Settings
from pipeline.storage.db import upgrade
from pipeline.storage.tables import (
    counters,
    dispatches,
    log_lines,
    org_quota_leases,
    organizations,
    pipeline_runs,
    state_transitions,
    step_logs,
)
from tests.support.servers import ROOT, Server, app_env, create_pg_database

PIPELINE_OPS = os.path.join(os.path.dirname(sys.executable), "pipeline-ops")
ORG = "keeper"
OLD_ENDED, NEW_ENDED, ACTIVE = 6000, 4000, 5
TABLES = {
    "runs": pipeline_runs,
    "step_logs": step_logs,
    "log_lines": log_lines,
    "state_transitions": state_transitions,
    "quota_leases": org_quota_leases,
    "schedule_dispatches": dispatches,
}


def _rows(run_id: str, status: str, created: datetime, ended: datetime | None, n: int) -> dict:
    day = date(2026, 1, 1) + timedelta(days=n % 300)
    return {
        "run": {
            "run_id": run_id,
            "org_slug": ORG,
            "pipeline_id": "demo_genai_usage",
            "pipeline_path": "demo/sample/genai_usage",
            "status": status,
            "idempotency_key": f"{ORG}|demo_genai_usage|default|{day}|{n}",
            "trigger": "schedule",
            "credential_id": "default",
            "start_date": day,
            "end_date": day,
            "params": {},
            "created_at": created,
            "started_at": created,
            "ended_at": ended,
        },
        "step": {
            "run_id": run_id,
            "step_id": "load",
            "attempt": 1,
            "status": "completed" if ended else "running",
            "started_at": created,
            "ended_at": ended,
            "duration_ms": 10 if ended else None,
            "rows_written": 3,
        },
        "line": {"run_id": run_id, "ts": created, "level": "INFO", "message": "step load done"},
        "transition": {
            "run_id": run_id,
            "from_status": "running",
            "to_status": status,
            "at": ended or created,
        },
        "lease": {
            "run_id": run_id,
            "org_slug": ORG,
            "acquired_at": created,
            "expires_at": created + timedelta(hours=2),
            "released_at": ended,
            "outcome": "succeeded" if ended else None,
        },
        "dispatch": {
            "org_slug": ORG,
            "pipeline_path": "demo/sample/genai_usage",
            "scheduled_time": created + timedelta(seconds=n),
            "status": "started",
            "run_id": run_id,
            "created_at": created,
            "updated_at": created,
        },
    }


def _seed(engine: Engine, now: datetime) -> None:
    batches: dict[str, list[dict]] = {k: [] for k in ("run", "step", "line", "transition")}
    batches.update(lease=[], dispatch=[])
    plan = (
        [("completed", now - timedelta(days=200), now - timedelta(days=91 + i % 100))
         for i in range(OLD_ENDED)]
        + [("failed", now - timedelta(days=100), now - timedelta(days=89 - i % 80))
           for i in range(NEW_ENDED)]
        + [(s, now - timedelta(days=300), None)
           for s in ("pending", "validating", "queued", "running", "cancelling")]
    )  # fmt: skip
    for n, (status, created, ended) in enumerate(plan):
        for key, row in _rows(str(uuid.uuid4()), status, created, ended, n).items():
            batches[key].append(row)
    # Dispatch rows that started no run: skipped ticks, old and new.
    for n, when in enumerate([now - timedelta(days=120)] * 30 + [now - timedelta(days=5)] * 20):
        batches["dispatch"].append(
            {
                "org_slug": ORG,
                "pipeline_path": "demo/sample/other",
                "scheduled_time": when + timedelta(minutes=n),
                "status": "skipped",
                "run_id": None,
                "reason": "quota_exceeded",
                "created_at": when,
                "updated_at": when,
            }
        )
    tables = {
        "run": pipeline_runs,
        "step": step_logs,
        "line": log_lines,
        "transition": state_transitions,
        "lease": org_quota_leases,
        "dispatch": dispatches,
    }
    with engine.begin() as conn:
        conn.execute(
            insert(organizations).values(
                org_slug=ORG, name=ORG, api_key_prefix="keeper01", api_key_hash="0" * 64,
                created_at=now,
            )
        )  # fmt: skip
        for key, table in tables.items():
            conn.execute(insert(table), batches[key])
        conn.execute(
            insert(counters).values(
                name="runs", org_slug=ORG, pipeline_id="demo_genai_usage", status="completed",
                value=OLD_ENDED, last_at=now - timedelta(days=91),
            )
        )  # fmt: skip


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        out = {
            name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for name, t in TABLES.items()
        }
        out["counters"] = int(conn.execute(select(func.sum(counters.c.value))).scalar_one())
        out["active_runs"] = int(
            conn.execute(
                select(func.count())
                .select_from(pipeline_runs)
                .where(pipeline_runs.c.ended_at.is_(None))
            ).scalar_one()
        )
    return out


@pytest.fixture(params=["sqlite", "postgres"])
def seeded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, dict]]:
    if request.param == "postgres":
        server: Server = request.getfixturevalue("postgres_server")
        url = create_pg_database(server, f"prune_{uuid.uuid4().hex[:10]}")
    else:
        url = f"sqlite:///{tmp_path / 'meta.db'}"
    env = app_env(tmp_path, url, os.environ["REDIS_URL"], ROOT / "configs")
    upgrade(Settings.from_env(env).database_url)
    engine = create_engine(url)
    _seed(engine, datetime.now(UTC))
    yield engine, {**os.environ, **env}
    engine.dispose()


def _warehouse(path: Path) -> int:
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE IF NOT EXISTS keeper_dev_costs (run_id VARCHAR, cost DOUBLE)")
        return int(con.execute("SELECT count(*) FROM keeper_dev_costs").fetchone()[0])


def _prune(env: dict, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PIPELINE_OPS, "--output", "json", "db", "prune", "--older-than", "90d", *args],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_prune_deletes_exactly_the_old_ended_runs_and_their_rows(
    seeded: tuple[Engine, dict],
) -> None:
    engine, env = seeded
    warehouse = Path(env["PIPELINE_OPS_VAR_DIR"]) / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE TABLE keeper_dev_costs AS SELECT 'r' || range AS run_id, 1.5 AS cost"
                    " FROM range(250)")  # fmt: skip
    before = _counts(engine)
    total_runs = OLD_ENDED + NEW_ENDED + ACTIVE
    assert before["runs"] == total_runs and before["active_runs"] == ACTIVE
    assert before["schedule_dispatches"] == total_runs + 50

    dry = _prune(env, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    expected = {
        "runs": OLD_ENDED,
        "step_logs": OLD_ENDED,
        "log_lines": OLD_ENDED,
        "state_transitions": OLD_ENDED,
        "quota_leases": OLD_ENDED,
        "schedule_dispatches": OLD_ENDED + 30,
    }
    assert json.loads(dry.stdout)["rows"] == expected
    assert _counts(engine) == before  # a dry run deletes nothing

    done = _prune(env, "--batch-size", "700")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["rows"] == expected and report["dry_run"] is False
    assert report["batches"] == -(-OLD_ENDED // 700) + 1  # the run-less dispatches: one batch

    after = _counts(engine)
    assert after == {
        "runs": NEW_ENDED + ACTIVE,
        "step_logs": NEW_ENDED + ACTIVE,
        "log_lines": NEW_ENDED + ACTIVE,
        "state_transitions": NEW_ENDED + ACTIVE,
        "quota_leases": NEW_ENDED + ACTIVE,
        "schedule_dispatches": NEW_ENDED + ACTIVE + 20,
        "counters": before["counters"],  # /metrics totals outlive the rows
        "active_runs": ACTIVE,
    }
    with engine.connect() as conn:
        kept = conn.execute(select(pipeline_runs.c.status, pipeline_runs.c.ended_at)).all()
        orphans = conn.execute(
            select(func.count())
            .select_from(step_logs)
            .where(~step_logs.c.run_id.in_(select(pipeline_runs.c.run_id)))
        ).scalar_one()
    cutoff = datetime.now(UTC) - timedelta(days=90)
    assert all(e is None or e.replace(tzinfo=UTC) > cutoff for _, e in kept)
    assert sorted(s for s, e in kept if e is None) == sorted(
        ["pending", "validating", "queued", "running", "cancelling"]
    )
    assert orphans == 0
    assert _warehouse(warehouse) == 250

    again = _prune(env)  # nothing left to do: a second prune is a no-op
    assert again.returncode == 0 and set(json.loads(again.stdout)["rows"].values()) == {0}


def test_prune_refuses_a_bad_age_and_deletes_nothing(seeded: tuple[Engine, dict]) -> None:
    engine, env = seeded
    before = _counts(engine)

    for bad in ("90", "0d", "-3d", "90 days", "9y"):
        result = subprocess.run(
            [PIPELINE_OPS, "db", "prune", "--older-than", bad],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

        assert result.returncode == 2, (bad, result.stderr)
        assert "--older-than must be a positive age like 90d" in result.stderr
    assert _counts(engine) == before
