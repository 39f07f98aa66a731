"""Production mode (PIPELINE_OPS_ENV=prod) refuses an unsafe setup before it touches
anything: one message listing every problem, a non-zero exit, and nothing created (no DB
file, no var directory, no master key file) — from the CLI, the web app, a worker and beat.
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest

from tests.support.servers import ROOT, VENV_BIN, bare_environ

MASTER_KEY = base64.b64encode(b"k" * 32).decode()
ADMIN_KEY = "a" * 40
# Everything production mode asks for, except the metadata DB is on a closed port: a setup
# that passes the checks gets as far as trying to reach it.
SAFE = {
    "PIPELINE_OPS_ENV": "prod",
    "DATABASE_URL": "postgresql://po:s3cr3t-pw@127.0.0.1:1/po",
    "WAREHOUSE_URL": "bigquery://proj-1?location=US",
    "PIPELINE_OPS_MASTER_KEY": MASTER_KEY,
    "PIPELINE_OPS_ADMIN_KEY": ADMIN_KEY,
    "PIPELINE_OPS_PUBLIC_URL": "https://ops.example.test",
    "REDIS_URL": "redis://127.0.0.1:1/0",
}
# One line of the message per refusal, and the change to SAFE that causes it.
REFUSALS = {
    "sqlite": ({"DATABASE_URL": "sqlite:///{tmp}/var/meta.db"}, "DATABASE_URL is SQLite"),
    "no master key": ({"PIPELINE_OPS_MASTER_KEY": ""}, "PIPELINE_OPS_MASTER_KEY is not set"),
    "short admin key": ({"PIPELINE_OPS_ADMIN_KEY": "short-key"}, "PIPELINE_OPS_ADMIN_KEY is 9"),
    "http public URL": (
        {"PIPELINE_OPS_PUBLIC_URL": "http://ops.example.test"},
        "PIPELINE_OPS_PUBLIC_URL is 'http://ops.example.test'",
    ),
    "duckdb warehouse": (
        {"WAREHOUSE_URL": "duckdb:///{tmp}/var/warehouse.duckdb"},
        "WAREHOUSE_URL is a DuckDB file",
    ),
}


def environment(tmp: Path, changes: dict[str, str]) -> dict[str, str]:
    env = bare_environ()
    env.update(SAFE)
    env["PIPELINE_OPS_VAR_DIR"] = str(tmp / "var")
    env.update({k: v.format(tmp=tmp) for k, v in changes.items()})
    return {k: v for k, v in env.items() if v != ""}


def run(env: dict[str, str], cwd: Path, *cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def created(tmp: Path) -> list[str]:
    return sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*"))


@pytest.mark.parametrize("refusal", list(REFUSALS))
def test_each_refusal_exits_non_zero_and_creates_nothing(tmp_path: Path, refusal: str) -> None:
    changes, line = REFUSALS[refusal]
    env = environment(tmp_path, changes)

    result = run(env, tmp_path, str(VENV_BIN / "pipeline-ops"), "orgs", "list")

    assert result.returncode == 1, result.stdout + result.stderr
    assert "refusing to start in production mode (PIPELINE_OPS_ENV=prod), 1 problem(s)" in (
        result.stderr
    )
    assert line in result.stderr
    assert "Traceback" not in result.stderr
    assert created(tmp_path) == []


def test_every_problem_is_listed_in_one_message(tmp_path: Path) -> None:
    changes = {k: v for change, _ in REFUSALS.values() for k, v in change.items()}
    env = environment(tmp_path, changes)

    result = run(env, tmp_path, str(VENV_BIN / "pipeline-ops"), "db", "upgrade")

    assert result.returncode == 1
    assert f"{len(REFUSALS)} problem(s)" in result.stderr
    for _, line in REFUSALS.values():
        assert line in result.stderr
    # The master key is named, never shown: and none of the values are echoed.
    assert "short-key" not in result.stderr
    assert created(tmp_path) == []


def test_a_safe_setup_passes_the_checks_and_reaches_for_the_db(tmp_path: Path) -> None:
    result = run(
        environment(tmp_path, {}), tmp_path, str(VENV_BIN / "pipeline-ops"), "orgs", "list"
    )

    assert result.returncode == 1
    assert "production mode" not in result.stderr
    assert "cannot reach the metadata DB at postgresql://po:[REDACTED]@127.0.0.1:1/po" in (
        result.stderr
    )
    assert "s3cr3t-pw" not in result.stderr
    assert created(tmp_path) == []


def test_embedded_warehouse_is_allowed_when_said_so(tmp_path: Path) -> None:
    changes = {
        "WAREHOUSE_URL": "duckdb:///{tmp}/var/warehouse.duckdb",
        "PIPELINE_OPS_ALLOW_EMBEDDED": "1",
    }
    result = run(
        environment(tmp_path, changes), tmp_path, str(VENV_BIN / "pipeline-ops"), "orgs", "list"
    )

    assert "production mode" not in result.stderr
    assert "cannot reach the metadata DB" in result.stderr


PROCESSES = {
    "web": [str(VENV_BIN / "python"), "-c", "from app import create_app; create_app()"],
    "worker": [
        str(VENV_BIN / "celery"),
        "-A",
        "tasks.celery_app",
        "worker",
        "--pool",
        "solo",
        "--without-gossip",
        "--without-mingle",
    ],
    "beat": [
        str(VENV_BIN / "celery"),
        "-A",
        "tasks.celery_app",
        "beat",
        "--schedule",
        "{tmp}/celerybeat-schedule",
    ],
}


@pytest.mark.parametrize("process", list(PROCESSES))
def test_web_worker_and_beat_refuse_too(tmp_path: Path, process: str) -> None:
    workdir = tmp_path / "host"
    workdir.mkdir()
    env = environment(workdir, REFUSALS["sqlite"][0] | REFUSALS["no master key"][0])
    cmd = [part.format(tmp=tmp_path) for part in PROCESSES[process]]

    result = run(env, ROOT, *cmd)

    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "refusing to start in production mode (PIPELINE_OPS_ENV=prod), 2 problem(s)" in output
    assert "DATABASE_URL is SQLite" in output
    assert "PIPELINE_OPS_MASTER_KEY is not set" in output
    assert created(workdir) == []
