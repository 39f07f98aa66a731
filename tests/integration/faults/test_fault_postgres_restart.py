"""PostgreSQL (the metadata DB) stopped and started again under a running API.

While the database is down the API answers 503 problem+json, on reads and on POST /run;
after it comes back the same app, without a restart, answers 200 / 202 again.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from app import create_app
from pipeline.bootstrap import build_services
from pipeline.settings import Settings
from pipeline.storage.db import upgrade
from tests.integration.conftest import write_configs
from tests.support.servers import (
    Server,
    app_env,
    create_pg_database,
    start_postgres,
    start_postgres_again,
    stop_postgres_only,
)

ONE_STEP = """\
pipeline_id: fault_pg_one
name: One noop step
provider: fault
domain: pg
steps:
  - step_id: only
    ps_type: generic.noop
"""


class Enqueued:
    """Records what the API enqueues; Celery itself is not what this test is about."""

    def __init__(self) -> None:
        self.runs: list[str] = []

    def check(self) -> None:
        return None

    def enqueue(self, run_id: str, plan: dict[str, Any]) -> None:
        self.runs.append(run_id)

    def revoke(self, run_id: str, plan: dict[str, Any]) -> None:
        return None


@pytest.fixture
def pg() -> Iterator[Server]:
    server = start_postgres()  # its own: this test stops it
    yield server
    server.stop()


def post_run(client: FlaskClient, key: str, day: int) -> Any:
    return client.post(
        "/pipelines/run/acme/fault/pg/one",
        json={"start_date": f"2026-02-{day:02d}", "end_date": f"2026-02-{day:02d}"},
        headers={"X-API-Key": key},
    )


def assert_503_problem(reply: Any) -> None:
    assert reply.status_code == 503, reply.get_data(as_text=True)
    assert reply.mimetype == "application/problem+json"
    body = reply.get_json()
    assert body["status"] == 503 and body["code"] == "service_unavailable", body


@pytest.mark.slow
def test_api_answers_503_while_postgres_is_down_and_recovers_by_itself(
    pg: Server, redis_server: Server, tmp_path: Path
) -> None:
    configs = write_configs(tmp_path, "fault/pg/one", ONE_STEP)
    db_url = create_pg_database(pg, f"fault_{uuid.uuid4().hex[:10]}")
    settings = Settings.from_env(
        {**os.environ, **app_env(tmp_path, db_url, redis_server.url, configs)}
    )
    upgrade(settings.database_url)
    dispatcher = Enqueued()
    services = build_services(settings, dispatcher)
    key = services.orgs.create("acme")
    client = create_app(services=services).test_client()
    headers = {"X-API-Key": key}

    assert post_run(client, key, 1).status_code == 202
    assert client.get("/pipelines/history/acme", headers=headers).status_code == 200

    stop_postgres_only(pg)
    try:
        t0 = time.monotonic()
        assert_503_problem(client.get("/pipelines/history/acme", headers=headers))
        assert_503_problem(post_run(client, key, 2))
        assert_503_problem(client.get("/pipelines/history/acme", headers=headers))
        assert time.monotonic() - t0 < 30  # answered promptly, not after long hangs
        health = client.get("/health")
        assert health.status_code == 503
    finally:
        start_postgres_again(pg)

    deadline = time.monotonic() + 20
    while True:  # the same app, no restart: pooled connections are re-established
        reply = client.get("/pipelines/history/acme", headers=headers)
        if reply.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert reply.status_code == 200, reply.get_data(as_text=True)
    accepted = post_run(client, key, 3)
    assert accepted.status_code == 202, accepted.get_data(as_text=True)
    history = client.get("/pipelines/history/acme", headers=headers).get_json()
    # The run refused while the DB was down left no trace; the two admitted ones are there.
    assert len(history["runs"]) == 2
    assert len(dispatcher.runs) == 2
    assert services.gate.usage("acme")["usage"]["daily_runs"] == 2
