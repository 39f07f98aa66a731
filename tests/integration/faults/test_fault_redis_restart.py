"""redis-server (broker, result backend and quota mirror) restarted empty while a step runs.

A dedicated stack: its own redis-server, gunicorn and Celery worker, so restarting the
broker cannot disturb the session's other tests. The run is started through the API,
redis-server is stopped while the first step sleeps and started again, empty, on the same
port. The run must end `completed` (or `failed`) and leave no quota reservation behind.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from pipeline.bootstrap import Services, build_services
from pipeline.settings import Settings
from pipeline.storage.db import upgrade
from tests.integration.conftest import settled_usage, wait_for_attempt, wait_run, write_configs
from tests.support.servers import Server, app_env, start_gunicorn, start_redis, start_worker

SLOW = """\
pipeline_id: fault_redis_slow
name: A slow step, then a quick one
provider: fault
domain: redis
steps:
  - step_id: slow
    ps_type: generic.noop
    config: {sleep_seconds: 6}
    timeout_seconds: 60
  - step_id: after
    ps_type: generic.noop
    depends_on: [slow]
"""


class NoDispatch:
    """The in-process services only read the store and the ledger; the API dispatches."""

    def check(self) -> None:
        return None

    def enqueue(self, run_id: str, plan: dict) -> None:
        raise AssertionError("this test starts runs through gunicorn")

    def revoke(self, run_id: str, plan: dict) -> None:
        return None


@dataclass
class Rig:
    services: Services
    redis: Server
    worker: Server
    web: Server
    key: str


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    configs = write_configs(tmp_path, "fault/redis/slow", SLOW)
    redis_server = start_redis()
    env = {
        **app_env(tmp_path, f"sqlite:///{tmp_path / 'meta.db'}", redis_server.url, configs),
        "PIPELINE_OPS_HEARTBEAT_INTERVAL": "1",
    }
    settings = Settings.from_env({**os.environ, **env})
    upgrade(settings.database_url)
    services = build_services(settings, NoDispatch())
    key = services.orgs.create("acme")
    services.gate.set_limits("acme", concurrent=1, daily=100)
    rig = Rig(services, redis_server, Server("none", None, ""), Server("none", None, ""), key)
    try:
        rig.worker = start_worker(env, concurrency=1, name="wredis", log_dir=tmp_path)
        rig.web = start_gunicorn(env, workers=1, log_dir=tmp_path)
        yield rig
    finally:
        for server in (rig.web, rig.worker, rig.redis):
            server.stop()


@pytest.mark.slow
def test_redis_restarted_empty_mid_step_the_run_ends_and_no_slot_leaks(rig: Rig) -> None:
    headers = {"X-API-Key": rig.key}
    url = f"{rig.web.url}/pipelines/run/acme/fault/redis/slow"
    reply = requests.post(
        url,
        json={"start_date": "2026-01-05", "end_date": "2026-01-05"},
        headers=headers,
        timeout=10,
    )
    assert reply.status_code == 202, reply.text
    run_id = reply.json()["run_id"]
    wait_for_attempt(rig, run_id, "slow")

    rig.redis.stop()
    time.sleep(2)
    rig.redis = start_redis(rig.redis.port)  # empty: the unacked message and the mirror are gone

    run = wait_run(rig, run_id)
    assert run.status in ("completed", "failed"), run
    if run.status == "completed":
        steps = [(a.step_id, a.status) for a in rig.services.store.step_attempts(run_id)]
        assert ("after", "completed") in steps

    usage = settled_usage(rig.services, "acme")
    assert usage["usage"]["concurrent_running"] == 0, usage
    assert usage["usage"]["daily_runs"] == 1
    # The slot is free: the next run of the org (concurrent=1) is admitted and completes.
    reply = requests.post(
        url,
        json={"start_date": "2026-01-06", "end_date": "2026-01-06"},
        headers=headers,
        timeout=10,
    )
    assert reply.status_code == 202, reply.text
    assert wait_run(rig, reply.json()["run_id"]).status == "completed"
    assert settled_usage(rig.services, "acme")["usage"]["concurrent_running"] == 0
