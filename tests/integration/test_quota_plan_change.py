"""A plan change made by another process applies to the very next run request.

The operator's sequence: read the usage (`GET /admin/orgs/ORG/quota`), lower the limit
with the CLI (`pipeline-ops orgs set-limits`, another process), then 12 run requests at
once. Against gunicorn (two worker processes, as in the Procfile) on a redis-server of
its own, with no Celery worker: every admitted run holds its slot, so exactly one of the
12 may be admitted, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.bootstrap import build_services
from pipeline.settings import Settings
from pipeline.storage.db import upgrade
from tests.integration.conftest import ROOT
from tests.support.doubles import NullDispatcher
from tests.support.records import count_runs
from tests.support.servers import Server, app_env, create_pg_database, start_gunicorn, start_redis

PIPELINE_OPS = Path(sys.executable).parent / "pipeline-ops"
ADMIN_KEY = "admin-key-for-the-plan-change-test"
ORG = "acme"
REQUESTS = 12


@pytest.fixture(params=["sqlite", "postgres"])
def web(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Server, dict[str, str]]]:
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_server")
        db_url = create_pg_database(server, f"plan_change_{uuid.uuid4().hex[:12]}")
    else:
        db_url = f"sqlite:///{tmp_path / 'meta.db'}"
    # A broker of its own: the admitted run's message must not reach another test's worker.
    redis_server = start_redis()
    env = {
        **app_env(tmp_path, db_url, redis_server.url, ROOT / "configs"),
        "PIPELINE_OPS_ADMIN_KEY": ADMIN_KEY,
    }
    gunicorn: Server | None = None
    try:
        upgrade(db_url)
        gunicorn = start_gunicorn(env, workers=2, log_dir=tmp_path)
        yield gunicorn, env
    finally:
        if gunicorn is not None:
            gunicorn.stop()
        redis_server.stop()


def pipeline_ops(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PIPELINE_OPS), *args],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_lowered_limit_after_a_usage_read_admits_exactly_one_of_12(
    web: tuple[Server, dict[str, str]],
) -> None:
    gunicorn, env = web
    services = build_services(Settings.from_env({**os.environ, **env}), NullDispatcher())
    api_key = services.orgs.create(ORG)
    admin = {"X-Admin-Key": ADMIN_KEY}

    # The operator looks first; both gunicorn workers answer some of these reads.
    for _ in range(6):
        reply = httpx.get(f"{gunicorn.url}/admin/orgs/{ORG}/quota", headers=admin, timeout=10)
        assert reply.status_code == 200, reply.text
        assert reply.json()["plan"]["concurrent_limit"] == 20  # the default plan

    lowered = pipeline_ops(env, "orgs", "set-limits", "--org", ORG, "--concurrent", "1")
    assert lowered.returncode == 0, lowered.stderr
    assert "concurrent_limit: 1" in lowered.stdout

    barrier = threading.Barrier(REQUESTS)

    def post(i: int) -> tuple[int, dict[str, Any]]:
        day = (date(2026, 1, 1) + timedelta(days=i)).isoformat()  # distinct idempotency keys
        barrier.wait()
        reply = httpx.post(
            f"{gunicorn.url}/pipelines/run/{ORG}/demo/sample/genai_usage",
            json={"start_date": day, "end_date": day},
            headers={"X-API-Key": api_key},
            timeout=30,
        )
        return reply.status_code, reply.json()

    with ThreadPoolExecutor(max_workers=REQUESTS) as pool:
        replies = list(pool.map(post, range(REQUESTS)))

    statuses = Counter(status for status, _ in replies)
    assert statuses == {202: 1, 429: REQUESTS - 1}, f"{statuses}\n{gunicorn.log()}"
    for status, body in replies:
        if status == 429:
            assert body["code"] == "quota_exceeded"
            assert (body["limit"], body["limit_value"]) == ("concurrent", 1)
            # `current` is the mirror's count, which includes reservations still on their
            # way to the ledger; on a starved machine (a request > IN_FLIGHT between its
            # two steps) it can briefly count refused ones too. The ledger's count is
            # what admits, checked above and below.
            assert body["current"] >= 1
    admitted = [body["run_id"] for status, body in replies if status == 202]
    assert count_runs(services.store, ORG) == 1  # the refused requests recorded nothing

    shown = pipeline_ops(env, "quota", "show", "--org", ORG)
    assert shown.returncode == 0, shown.stderr
    assert "running:   1 of 1" in shown.stdout
    assert f"  {admitted[0]}  acquired" in shown.stdout
    assert "(1 leases, 1 runs today" in shown.stdout  # the Redis mirror agrees
