"""The Procfile, as written: each line is started exactly as the file says, through
`sh -c "<line>"`, with only the environment the README documents (Configuration), pointing
at a redis-server and a SQLite metadata DB of this test on free loopback ports.

- web answers /health;
- the worker runs a pipeline started over HTTP, to completion;
- beat fires a due schedule: the schedule runs every minute, and beat's dispatcher runs on
  the minute, so its first dispatch after the schedule is enabled starts the run (up to
  ~60 s of waiting; enabling counts from now, so only that tick can be due);
- Flower answers 401 without credentials and 200 with them, and lists the worker.

Like `make up`, the metadata DB is first migrated with `pipeline-ops bootstrap`.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from pipeline.schedules.service import ScheduleStore
from pipeline.storage.db import make_engine
from pipeline.storage.run_store import SqlRunStore
from tests.support.procfile import (
    FLOWER_PASSWORD,
    FLOWER_USER,
    documented_env,
    left_running,
    pipeline_ops,
    procfile_lines,
    start_line,
    up,
)
from tests.support.servers import Server, start_redis, wait_for

ORG = "procfile"
CHECKED = ("web", "worker", "beat", "flower")
DEMO = "demo/sample/genai_usage"


@dataclass
class Deployment:
    env: dict[str, str]
    processes: dict[str, Server]
    web_url: str
    flower_url: str
    store: SqlRunStore

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return pipeline_ops(self.env, *args)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    tmp = tmp_path_factory.mktemp("procfile")
    redis = start_redis()
    env = documented_env(tmp, redis.url)
    processes: dict[str, Server] = {}
    try:
        boot = pipeline_ops(env, "bootstrap")
        assert boot.returncode == 0, boot.stdout + boot.stderr
        for name, line in procfile_lines().items():
            processes[name] = start_line(name, line, env, tmp)
        web_url = f"http://127.0.0.1:{env['PORT']}"
        flower_url = f"http://127.0.0.1:{env['FLOWER_PORT']}"
        up(processes["web"], lambda: httpx.get(f"{web_url}/health", timeout=2).status_code)
        up(processes["worker"], lambda: "ready." in processes["worker"].log())
        up(processes["beat"], lambda: "beat: Starting" in processes["beat"].log())
        up(
            processes["flower"],
            lambda: httpx.get(f"{flower_url}/healthcheck", timeout=2).status_code == 200,
        )
        deployment = Deployment(
            env, processes, web_url, flower_url, SqlRunStore(make_engine(env["DATABASE_URL"]))
        )
        created = deployment.cli("orgs", "create", ORG)
        assert created.returncode == 0, created.stderr
        deployment.env["API_KEY"] = created.stdout.split("api_key: ", 1)[1].split()[0]
        # The schedule is enabled now, so beat's next on-the-minute dispatch finds it due
        # while the other tests run.
        enabled = deployment.cli(
            "schedules", "enable", DEMO, "--org", ORG, "--cron", "* * * * *", "--catch-up", "latest"
        )
        assert enabled.returncode == 0, enabled.stdout + enabled.stderr
        yield deployment
    finally:
        for server in processes.values():
            server.stop()
        redis.stop()
    for name, server in processes.items():
        assert server.proc is not None and server.proc.poll() is not None, f"{name} still runs"
    assert left_running(tmp) == []


def test_every_line_of_the_procfile_is_checked() -> None:
    assert tuple(procfile_lines()) == CHECKED, "add a check for the new Procfile process"


def test_web_answers_health(deployment: Deployment) -> None:
    response = httpx.get(f"{deployment.web_url}/health", timeout=10)

    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"database": "ok", "redis": "ok", "warehouse": "ok"}


def test_the_worker_runs_a_pipeline_started_over_http(deployment: Deployment) -> None:
    headers = {"X-API-Key": deployment.env["API_KEY"]}
    with httpx.Client(base_url=deployment.web_url, headers=headers, timeout=30) as http:
        started = http.post(
            f"/pipelines/run/{ORG}/{DEMO}",
            json={"start_date": "2026-01-01", "end_date": "2026-01-07"},
        )
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        status = follow(http, run_id, timeout=120, worker=deployment.processes["worker"])

    assert status["status"] == "completed", status
    assert status["rows_written"] == 35 + 5 + 35  # usage, prices, daily cost
    assert status["warnings"] == []


def test_beat_fires_a_due_schedule(deployment: Deployment) -> None:
    schedules = ScheduleStore(deployment.store.engine, deployment.store.clock)

    def started() -> bool:
        return any(d["status"] == "started" for d in schedules.dispatches(ORG, DEMO))

    try:
        wait_for(started, 75, "a dispatch started by beat")
    except TimeoutError:
        raise AssertionError(
            f"beat log:\n{deployment.processes['beat'].log()}\n"
            f"worker log:\n{deployment.processes['worker'].log()}"
        ) from None
    dispatch = next(d for d in schedules.dispatches(ORG, DEMO) if d["status"] == "started")
    headers = {"X-API-Key": deployment.env["API_KEY"]}
    with httpx.Client(base_url=deployment.web_url, headers=headers, timeout=30) as http:
        status = follow(http, dispatch["run_id"], 120, deployment.processes["worker"])
    assert status["trigger"] == "schedule"
    assert status["status"] == "completed", status
    # A scheduled run covers the day before its tick; the demo file has no rows for it,
    # and the status says so instead of looking like a normal load.
    assert status["rows_written"] == 5  # the prices file has no date column
    assert any(w.startswith("no rows in ") for w in status["warnings"]), status["warnings"]


def test_flower_refuses_without_credentials_and_answers_with_them(deployment: Deployment) -> None:
    auth = (FLOWER_USER, FLOWER_PASSWORD)

    assert httpx.get(f"{deployment.flower_url}/", timeout=10).status_code == 401
    assert (
        httpx.get(f"{deployment.flower_url}/", auth=(FLOWER_USER, "wrong"), timeout=10).status_code
        == 401
    )
    assert httpx.get(f"{deployment.flower_url}/", auth=auth, timeout=10).status_code == 200

    def listed() -> bool:
        workers = httpx.get(
            f"{deployment.flower_url}/api/workers", params={"refresh": "1"}, auth=auth, timeout=10
        )
        assert workers.status_code == 200, workers.text
        return bool(workers.json())

    wait_for(listed, 30, "the Procfile's worker in flower's /api/workers")


def test_the_worker_log_shows_the_broker_url_without_a_password_mask(
    deployment: Deployment,
) -> None:
    worker = deployment.processes["worker"]
    assert worker.log_path is not None
    log = worker.log_path.read_text(errors="replace")
    redis_url = deployment.env["REDIS_URL"]

    assert f"Connected to {redis_url}" in log
    assert "[REDACTED]" not in log


def follow(http: httpx.Client, run_id: str, timeout: float, worker: Server) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    status: dict = {}  # type: ignore[type-arg]
    while time.monotonic() < deadline:
        status = http.get(f"/pipelines/status/{ORG}/{run_id}").json()
        if status["status"] in ("completed", "failed", "cancelled"):
            return status  # type: ignore[no-any-return]
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} did not finish: {status}\nworker log:\n{worker.log()}")


def test_make_up_starts_all_four_processes(tmp_path: Path) -> None:
    """`make up`, as the README says: bootstrap, then honcho runs the Procfile; web on PORT."""
    redis = start_redis()
    env = documented_env(tmp_path, redis.url)
    make = start_line("make-up", "make up", env, tmp_path)
    try:
        web = f"http://127.0.0.1:{env['PORT']}"
        up(make, lambda: httpx.get(f"{web}/health", timeout=2).status_code == 200, timeout=120)
        flower = f"http://127.0.0.1:{env['FLOWER_PORT']}"
        up(make, lambda: httpx.get(f"{flower}/healthcheck", timeout=2).status_code == 200)
        up(make, lambda: "beat: Starting" in make.log() and "ready." in make.log())
    finally:
        make.stop()
        redis.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{env['PORT']}/health", timeout=2)
    assert left_running(tmp_path) == []  # honcho stopped its four children too


def test_worker_and_beat_heartbeats_show_in_ready_and_metrics(deployment: Deployment) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    def beating() -> bool:
        beats = httpx.get(f"{deployment.web_url}/health/ready", timeout=10).json()["heartbeats"]
        return bool(beats["workers"]) and beats["beat"] is not None

    wait_for(beating, 30, "a worker and a beat heartbeat in /health/ready")
    ready = httpx.get(f"{deployment.web_url}/health/ready", timeout=10).json()
    assert ready["status"] == "ok"
    assert all(0 <= age < 60 for age in ready["heartbeats"]["workers"].values())
    assert 0 <= ready["heartbeats"]["beat"] < 60

    page = httpx.get(f"{deployment.web_url}/metrics", timeout=10)
    assert page.status_code == 200, page.text
    families = {f.name: f for f in text_string_to_metric_families(page.text)}
    workers = families["pipeline_ops_worker_heartbeat_age_seconds"]
    assert workers.type == "gauge" and [s.labels["worker"] for s in workers.samples]
    beat = families["pipeline_ops_beat_heartbeat_age_seconds"]
    assert beat.type == "gauge" and 0 <= beat.samples[0].value < 60
    queues = {s.labels["queue"] for s in families["pipeline_ops_queue_depth"].samples}
    assert queues == {"celery", "pipeline_ops.control"}
