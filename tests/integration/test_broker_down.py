"""With redis-server down, a run request says which Redis it could not reach and what to do,
and records nothing: no run row, no quota used (API 503, CLI exit 1). `--local`, which the
message suggests, still runs the pipeline. The redis-server here is a real one, stopped."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from pipeline.orgs.service import OrgService
from pipeline.storage.db import make_engine, upgrade
from pipeline.storage.run_store import SqlRunStore
from quota.ledger import SqlLedger
from tests.support.records import count_runs
from tests.support.servers import ROOT, Server, app_env, start_gunicorn, start_redis

PIPELINE_OPS = os.path.join(os.path.dirname(sys.executable), "pipeline-ops")
ORG = "nobroker"
PASSWORD = "hunter2-broker-pass"


@pytest.fixture(scope="module")
def stopped_redis() -> str:
    server = start_redis()
    url = server.url
    server.stop()
    return url


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, stopped_redis: str) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("nobroker")
    values = app_env(tmp, f"sqlite:///{tmp / 'meta.db'}", stopped_redis, ROOT / "configs")
    upgrade(values["DATABASE_URL"])
    return values


@pytest.fixture(scope="module")
def api_key(env: dict[str, str]) -> str:
    return OrgService(store(env)).create(ORG)


@pytest.fixture(scope="module")
def web(env: dict[str, str], api_key: str) -> Iterator[Server]:
    server = start_gunicorn(env, workers=1)
    yield server
    server.stop()


def store(env: dict[str, str]) -> SqlRunStore:
    return SqlRunStore(make_engine(env["DATABASE_URL"]))


def nothing_recorded(env: dict[str, str]) -> None:
    runs = store(env)
    assert count_runs(runs, ORG) == 0
    usage = SqlLedger(runs.engine).snapshot(ORG, datetime.now(UTC))
    assert (usage.daily_runs, usage.monthly_runs, usage.concurrent_running) == (0, 0, 0)


def message(url: str) -> str:
    return f"cannot reach Redis at {url} (is redis-server running? for a one-off run use --local)"


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env}
    return subprocess.run(
        [PIPELINE_OPS, *args], env=full, cwd=ROOT, capture_output=True, text=True, timeout=120
    )


RUN = ("run", "demo/sample/genai_usage", "--org", ORG, "--date", "2026-01-02")


def test_the_api_answers_503_naming_the_broker_and_records_nothing(
    web: Server, env: dict[str, str], api_key: str, stopped_redis: str
) -> None:
    response = httpx.post(
        f"{web.url}/pipelines/run/{ORG}/demo/sample/genai_usage",
        json={"start_date": "2026-01-01", "end_date": "2026-01-07"},
        headers={"X-API-Key": api_key},
        timeout=60,
    )

    assert response.status_code == 503, response.text
    body = response.json()
    assert body["code"] == "service_unavailable"
    assert body["detail"] == message(stopped_redis)
    nothing_recorded(env)


def test_the_cli_exits_1_naming_the_broker_with_its_password_masked(
    env: dict[str, str], api_key: str, stopped_redis: str
) -> None:
    plain = cli(env, *RUN)
    with_password = stopped_redis.replace("redis://", f"redis://:{PASSWORD}@")
    masked = cli({**env, "REDIS_URL": with_password}, *RUN)

    assert plain.returncode == 1, plain.stdout + plain.stderr
    assert f"error: {message(stopped_redis)}" in plain.stderr
    assert masked.returncode == 1
    shown = stopped_redis.replace("redis://", "redis://:[REDACTED]@")
    assert f"error: {message(shown)}" in masked.stderr
    assert PASSWORD not in masked.stdout + masked.stderr
    nothing_recorded(env)


def test_local_runs_without_the_broker_as_the_message_says(
    env: dict[str, str], api_key: str
) -> None:
    result = cli(env, *RUN, "--local")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "status: completed" in result.stdout
    (run,) = store(env).list_runs(ORG)
    assert run.status == "completed"
