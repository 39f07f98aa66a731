"""A worker killed with SIGKILL mid-run holds its quota slot only until its lease lapses.

The whole process group of a dedicated worker is killed, so nothing redelivers the
task: the run stays `running` with a heartbeat that stopped. Heartbeats every second,
a 3 s heartbeat timeout and a 4 s quota lease keep the test short.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from pipeline.bootstrap import Services, build_services
from pipeline.runs.service import RunRequest
from pipeline.settings import Settings
from pipeline.storage import state
from pipeline.storage.db import upgrade
from pipeline_ops_core.errors import QuotaExceededError
from quota.gate import LedgerGate
from tests.integration.conftest import wait_for_attempt, write_configs
from tests.support.records import count_runs
from tests.support.servers import Server, app_env, start_worker

HOLD = """\
pipeline_id: quota_kill_hold
name: Sleeps long enough to be killed
provider: quota
domain: kill
steps:
  - step_id: hold
    ps_type: generic.noop
    config: {sleep_seconds: 30}
    timeout_seconds: 60
"""
HEARTBEAT_TIMEOUT = 3
LEASE = 4


@dataclass
class Rig:
    services: Services
    worker: Server


@pytest.fixture
def rig(tmp_path: Path, redis_server: Server) -> Iterator[Rig]:
    configs = write_configs(tmp_path, "quota/kill/hold", HOLD)
    env = {
        **app_env(tmp_path, f"sqlite:///{tmp_path / 'meta.db'}", redis_server.url, configs),
        "PIPELINE_OPS_HEARTBEAT_INTERVAL": "1",
        "PIPELINE_OPS_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
        "PIPELINE_OPS_QUOTA_LEASE_SECONDS": str(LEASE),
    }
    settings = Settings.from_env({**os.environ, **env})
    upgrade(settings.database_url)
    from pipeline.queue import CeleryDispatcher
    from tasks.celery_app import app

    services = build_services(settings, CeleryDispatcher())
    services.orgs.create("acme")
    worker = start_worker(env, concurrency=1, name="wquota", log_dir=tmp_path)
    yield Rig(services, worker)
    worker.stop()
    app.control.purge()  # the run admitted at the end was never picked up: drop it


def start(services: Services, day: int) -> str:
    req = RunRequest("acme", "quota", "kill", "hold", date(2026, 1, day), date(2026, 1, day))
    return str(services.runs.start(req).run_id)


def test_a_sigkilled_worker_holds_its_slot_until_its_lease_lapses(rig: Rig) -> None:
    svc, gate = rig.services, rig.services.gate
    assert isinstance(gate, LedgerGate)
    gate.set_limits("acme", concurrent=1)
    doomed = start(svc, 1)
    wait_for_attempt(rig, doomed, "hold")
    time.sleep(1.5)  # a heartbeat or two renews the run's deadline and its quota lease

    assert rig.worker.proc is not None
    os.killpg(rig.worker.proc.pid, signal.SIGKILL)  # the whole group: nothing redelivers
    rig.worker.proc.wait(timeout=10)
    killed_at = time.monotonic()

    with pytest.raises(QuotaExceededError) as caught:
        start(svc, 2)
    assert (caught.value.limit, caught.value.current) == ("concurrent", 1)
    assert str(caught.value) == "concurrent quota exceeded: 1 of 1 used"
    assert count_runs(svc.store, "acme") == 1  # the refusal recorded nothing

    admitted = None
    while admitted is None and time.monotonic() - killed_at < 15:
        time.sleep(0.25)
        with contextlib.suppress(QuotaExceededError):
            admitted = start(svc, 2)
    held_for = time.monotonic() - killed_at
    assert admitted is not None, "the dead run's slot was never freed"
    # Held while its deadline (last heartbeat + 3 s, heartbeats every 1 s) was ahead,
    # and freed once it passed.
    assert HEARTBEAT_TIMEOUT - 1.5 <= held_for <= LEASE + 2

    run = svc.store.get_run(doomed)
    assert run.status == state.FAILED
    assert run.error_message.startswith("no heartbeat since ")
    assert "the worker running this run stopped" in run.error_message
    usage = gate.usage("acme")["usage"]
    assert (usage["concurrent_running"], usage["failed_runs"]) == (1, 1)
    assert [lease["run_id"] for lease in usage["leases"]] == [admitted]
    assert svc.runs.reap() == []  # the reaper finds nothing left to heal
    svc.runs.cancel("acme", admitted)
