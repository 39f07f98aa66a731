"""`pipeline-ops doctor` against real servers: all up, then each dependency down in turn
(Redis stopped, the DB unreachable, the wrong master key): the exit code and the failing
line. And `config show`: effective settings, where each came from, secrets masked."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import ROOT, VENV_BIN, Server, bare_environ, start_redis

KEY_A = base64.b64encode(b"A" * 32).decode()
KEY_B = base64.b64encode(b"B" * 32).decode()
OPENAI_SECRET = json.dumps({"admin_key": "sk-admin-doctor-test"})


def run(
    env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "pipeline-ops"), *args],
        env=env,
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def lines(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """check name -> its line, from doctor's `status  name: detail` output."""
    found = {}
    for line in result.stdout.splitlines():
        status, rest = line.split(None, 1)
        name = rest.split(":", 1)[0]
        found[name] = f"{status.strip()} {rest}"
    return found


@pytest.fixture(scope="module")
def redis() -> Iterator[Server]:
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture
def host(tmp_path: Path, redis: Server) -> dict[str, str]:
    """A migrated SQLite DB, Redis up, one OpenAI credential sealed under KEY_A."""
    env = bare_environ()
    env.update(
        {
            "PIPELINE_OPS_VAR_DIR": str(tmp_path / "var"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'meta.db'}",
            "WAREHOUSE_URL": f"duckdb:///{tmp_path / 'warehouse.duckdb'}",
            "REDIS_URL": redis.url,
            "PIPELINE_OPS_MASTER_KEY": KEY_A,
        }
    )
    for args, stdin in (
        (("db", "upgrade"), None),
        (("orgs", "create", "acme"), None),
        (("credentials", "add", "acme", "openai", "--name", "openai"), OPENAI_SECRET),
    ):
        done = run(env, *args, stdin=stdin)
        assert done.returncode == 0, done.stdout + done.stderr
    return env


def test_all_up(host: dict[str, str], redis: Server) -> None:
    result = run(host, "doctor")

    assert result.returncode == 0, result.stdout + result.stderr
    found = lines(result)
    assert found["database"].startswith("ok database: sqlite:///")
    assert found["redis"] == f"ok redis: {redis.url}"
    assert found["master key"].startswith("ok master key: PIPELINE_OPS_MASTER_KEY: key id ")
    assert found["master key"].endswith("opens the 1 key id(s) in the vault")
    assert found["providers"].startswith("ok providers: ")
    assert found["warehouse"].startswith("ok warehouse: ")
    assert {name for name in found if name.startswith("extra ")} == {
        "extra bigquery",
        "extra aws",
        "extra azure",
        "extra oci",
        "extra supabase",
    }
    assert "sk-admin-doctor-test" not in result.stdout + result.stderr
    assert KEY_A not in result.stdout + result.stderr


def test_redis_stopped(host: dict[str, str]) -> None:
    stopped = start_redis()
    stopped.stop()
    env = {**host, "REDIS_URL": stopped.url}

    result = run(env, "doctor")

    assert result.returncode == 1
    assert lines(result)["redis"].startswith(f"FAIL redis: cannot reach {stopped.url}: ")
    assert lines(result)["database"].startswith("ok ")
    assert "1 check(s) failed" in result.stderr


def test_db_unreachable(host: dict[str, str]) -> None:
    env = {**host, "DATABASE_URL": "postgresql://po:db-pw-x@127.0.0.1:1/po"}

    result = run(env, "doctor")

    assert result.returncode == 1
    database = lines(result)["database"]
    assert database.startswith(
        "FAIL database: cannot reach the metadata DB at postgresql://po:[REDACTED]@127.0.0.1:1/po"
    )
    assert "db-pw-x" not in result.stdout + result.stderr
    # Without a DB, the vault can't be read: said, not failed twice.
    assert lines(result)["master key"].startswith("warn master key:")


def test_wrong_master_key(host: dict[str, str]) -> None:
    env = {**host, "PIPELINE_OPS_MASTER_KEY": KEY_B}

    result = run(env, "doctor")

    assert result.returncode == 1
    line = lines(result)["master key"]
    assert line.startswith("FAIL master key: PIPELINE_OPS_MASTER_KEY (key id ")
    assert "does not open stored credentials: acme/" in line
    assert "is not available" in line
    assert KEY_B not in result.stdout + result.stderr


def test_db_behind(host: dict[str, str]) -> None:
    from alembic import command

    from pipeline.storage.db import alembic_config

    # As a DB last migrated by older code says it is.
    command.stamp(alembic_config(host["DATABASE_URL"]), "0008_quota_plan_epoch", purge=True)

    result = run(host, "doctor")

    assert result.returncode == 1
    assert "run `pipeline-ops db upgrade`" in lines(result)["database"]


def test_production_problems_are_failed_checks(host: dict[str, str]) -> None:
    env = {**host, "PIPELINE_OPS_ENV": "prod"}

    result = run(env, "doctor")

    assert result.returncode == 1
    config_lines = [line for line in result.stdout.splitlines() if "config:" in line]
    assert any("DATABASE_URL is SQLite" in line for line in config_lines)
    assert any("PIPELINE_OPS_ADMIN_KEY is not set" in line for line in config_lines)
    assert all(line.startswith("FAIL") for line in config_lines)


def test_config_show_masks_secrets_and_says_where_each_came_from(host: dict[str, str]) -> None:
    env = {
        **host,
        "PIPELINE_OPS_ADMIN_KEY": "admin-key-value-that-is-secret-0123456789",
        "REDIS_URL": "redis://:redis-pw-value@127.0.0.1:6390/0",
    }

    table = run(env, "config", "show")
    as_json = run(env, "config", "show", "--json")

    assert table.returncode == 0 and as_json.returncode == 0, table.stderr + as_json.stderr
    rows = {row["variable"]: row for row in json.loads(as_json.stdout)}
    assert rows["PIPELINE_OPS_ADMIN_KEY"] == {
        "setting": "admin_key",
        "variable": "PIPELINE_OPS_ADMIN_KEY",
        "value": "[REDACTED]",
        "source": "env",
    }
    assert rows["PIPELINE_OPS_MASTER_KEY"]["value"] == "[REDACTED]"
    assert rows["REDIS_URL"]["value"] == "redis://:[REDACTED]@127.0.0.1:6390/0"
    assert rows["PIPELINE_OPS_HEARTBEAT_TIMEOUT"] == {
        "setting": "heartbeat_timeout",
        "variable": "PIPELINE_OPS_HEARTBEAT_TIMEOUT",
        "value": 120,
        "source": "default",
    }
    assert rows["PIPELINE_OPS_METRICS_TOKEN"]["value"] is None
    for secret in ("admin-key-value-that-is-secret", "redis-pw-value", KEY_A):
        assert secret not in table.stdout + as_json.stdout
    assert "PIPELINE_OPS_ADMIN_KEY" in table.stdout and "(env)" in table.stdout
