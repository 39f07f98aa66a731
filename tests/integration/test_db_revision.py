"""Explicit migration: `db upgrade` and `db check`, and every other process refusing a
metadata DB behind the code instead of migrating it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from app import create_app
from pipeline.preflight import StartupRefused
from pipeline.settings import Settings
from pipeline.storage.db import head_revisions, revision_of, upgrade
from tests.support.servers import ROOT, VENV_BIN, Server, bare_environ

# The revision before the head: a DB a deploy of older code left behind.
OLDER = "0008_quota_plan_epoch"


def environment(tmp: Path) -> dict[str, str]:
    env = bare_environ()
    env.update(
        {
            "PIPELINE_OPS_VAR_DIR": str(tmp / "var"),
            "DATABASE_URL": f"sqlite:///{tmp / 'meta.db'}",
            "WAREHOUSE_URL": f"duckdb:///{tmp / 'warehouse.duckdb'}",
            "REDIS_URL": "redis://127.0.0.1:1/0",
        }
    )
    return env


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "pipeline-ops"), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def version_rows(db: Path) -> list[str]:
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        rows = [r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))]
    engine.dispose()
    return rows


def test_db_check_on_no_database_fails_and_creates_nothing(tmp_path: Path) -> None:
    result = cli(environment(tmp_path), "db", "check")

    assert result.returncode == 1
    head = ", ".join(head_revisions())
    assert (
        f"the metadata DB is at revision none (no schema yet), this code needs {head}: "
        "run `pipeline-ops db upgrade`" in result.stderr
    )
    assert list(tmp_path.iterdir()) == []


def test_db_upgrade_then_check(tmp_path: Path) -> None:
    env = environment(tmp_path)
    head = ", ".join(head_revisions())

    first = cli(env, "db", "upgrade")
    again = cli(env, "db", "upgrade")
    check = cli(env, "db", "check")

    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == f"metadata DB: upgraded from empty to {head}"
    assert again.stdout.strip() == f"metadata DB: already at revision {head}"
    assert check.returncode == 0
    assert check.stdout.strip() == f"metadata DB: at revision {head} (up to date)"
    assert version_rows(tmp_path / "meta.db") == [head]


@pytest.fixture
def behind(tmp_path: Path) -> dict[str, str]:
    env = environment(tmp_path)
    upgrade(env["DATABASE_URL"], OLDER)
    return env


@pytest.mark.parametrize(
    "command", [("status", "00000000-0000-0000-0000-000000000000"), ("orgs", "list")]
)
def test_a_read_command_refuses_a_behind_db_and_does_not_migrate(
    behind: dict[str, str], tmp_path: Path, command: tuple[str, ...]
) -> None:
    result = cli(behind, *command)

    assert result.returncode == 1
    head = ", ".join(head_revisions())
    assert result.stderr.strip() == (
        f"error: the metadata DB is at revision {OLDER}, this code needs {head}: "
        "run `pipeline-ops db upgrade`"
    )
    assert version_rows(tmp_path / "meta.db") == [OLDER]


def test_db_check_fails_on_a_behind_db_and_upgrade_fixes_it(
    behind: dict[str, str], tmp_path: Path
) -> None:
    check = cli(behind, "db", "check")
    upgraded = cli(behind, "db", "upgrade")
    listed = cli(behind, "orgs", "list")

    assert check.returncode == 1
    assert f"at revision {OLDER}" in check.stderr
    assert upgraded.returncode == 0
    assert f"upgraded from {OLDER} to" in upgraded.stdout
    assert listed.returncode == 0, listed.stderr


def test_the_web_app_refuses_a_behind_db(behind: dict[str, str], tmp_path: Path) -> None:
    settings = Settings.from_env(behind)

    with pytest.raises(StartupRefused, match=f"at revision {OLDER}.*db upgrade"):
        create_app(settings)

    assert revision_of(behind["DATABASE_URL"]).current == (OLDER,)


def test_a_worker_refuses_a_behind_db(behind: dict[str, str], tmp_path: Path) -> None:
    result = subprocess.run(
        [
            str(VENV_BIN / "celery"),
            "-A",
            "tasks.celery_app",
            "worker",
            "--pool",
            "solo",
            "--without-gossip",
            "--without-mingle",
        ],
        env=behind,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"the metadata DB is at revision {OLDER}" in output
    assert "run `pipeline-ops db upgrade`" in output
    assert version_rows(tmp_path / "meta.db") == [OLDER]


def test_db_upgrade_on_postgres(postgres_server: Server) -> None:
    from tests.support.servers import create_pg_database

    url = create_pg_database(postgres_server, "po_revision")
    env = {**environment(Path("/nonexistent")), "DATABASE_URL": url}

    before = cli(env, "db", "check")
    upgraded = cli(env, "db", "upgrade")
    after = cli(env, "db", "check")

    assert before.returncode == 1 and "none (no schema yet)" in before.stderr
    assert upgraded.returncode == 0, upgraded.stderr
    assert after.returncode == 0, after.stderr
