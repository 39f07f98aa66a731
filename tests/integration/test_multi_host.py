"""Several hosts, simulated on this one: the API and two workers, each with a var
directory of its own (nothing shared on disk), on one PostgreSQL metadata DB, one Redis and
the BigQuery emulator as the warehouse, with one master key from the environment.

A credential added through the API (on the API's host) is decrypted by both workers: the
OpenAI usage step reads it to call the sample Admin API. Runs land on both workers (each
step attempt records the worker process that ran it: `host:pid`, and each pid is a child of
one worker's main process) and complete. No host made a key file of its own.
"""

from __future__ import annotations

import base64
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.cli.samples import SampleAPIServer
from pipeline.storage.db import make_engine
from pipeline.storage.run_store import SqlRunStore
from tests.integration.bigquery_emulator import PROJECT, bigquery_emulator  # noqa: F401
from tests.support.servers import (
    ROOT,
    VENV_BIN,
    Server,
    create_pg_database,
    start_gunicorn,
    start_redis,
    start_worker,
)

pytestmark = [pytest.mark.slow, pytest.mark.integration]

ORG = "multihost"
ADMIN_KEY = "multi-host-admin-key-0123456789abcdef"
DAYS = [f"2026-01-0{d}" for d in range(1, 7)]
TERMINAL = ("completed", "failed", "cancelled")


def parent_of(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return None
    return int(status.split("PPid:", 1)[1].split()[0])


@pytest.fixture
def redis() -> Iterator[Server]:
    server = start_redis()
    yield server
    server.stop()


def test_api_and_two_workers_share_only_the_db_broker_warehouse_and_key(
    tmp_path: Path,
    postgres_server: Server,
    redis: Server,
    bigquery_emulator: Server,  # noqa: F811
) -> None:
    samples = SampleAPIServer()
    common = {
        "DATABASE_URL": create_pg_database(postgres_server, "multihost"),
        "REDIS_URL": redis.url,
        "WAREHOUSE_URL": f"bigquery://{PROJECT}?location=US&endpoint={bigquery_emulator.url}",
        "PIPELINE_OPS_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
        "PIPELINE_OPS_ADMIN_KEY": ADMIN_KEY,
        "PIPELINE_OPS_EGRESS_ALLOW": "127.0.0.1:*",
    }
    hosts = {name: {**common, "PIPELINE_OPS_VAR_DIR": str(tmp_path / name)} for name in
             ("api", "w1", "w2")}  # fmt: skip
    servers: dict[str, Server] = {}
    try:
        release = subprocess.run(
            [str(VENV_BIN / "pipeline-ops"), "db", "upgrade"],
            env={**os.environ, **hosts["api"]}, cwd=ROOT, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert release.returncode == 0, release.stderr
        servers["api"] = start_gunicorn(hosts["api"], workers=1, log_dir=tmp_path)
        for name in ("w1", "w2"):
            # Distinct node names, as on two machines; one process each, so both take work.
            servers[name] = start_worker(hosts[name], concurrency=1, name=name, log_dir=tmp_path)
        api = httpx.Client(base_url=servers["api"].url, timeout=30)
        admin = {"X-Admin-Key": ADMIN_KEY}

        created = api.post("/admin/orgs", json={"org_slug": ORG}, headers=admin)
        assert created.status_code == 201, created.text
        org_key = {"X-API-Key": created.json()["api_key"]}
        added = api.post(
            f"/admin/orgs/{ORG}/credentials",
            json={
                "provider": "openai",
                "name": "openai samples",
                "credential_id": "openai_sample",
                "secret": samples.credential("openai"),
            },
            headers=admin,
        )
        assert added.status_code == 201, added.text

        run_ids = []
        for day in DAYS:
            started = api.post(
                f"/pipelines/run/{ORG}/genai/payg/openai",
                json={"start_date": day, "end_date": day, "credential_id": "openai_sample"},
                headers=org_key,
            )
            assert started.status_code in (200, 201, 202), started.text
            run_ids.append(started.json()["run_id"])

        store = SqlRunStore(make_engine(common["DATABASE_URL"]))
        deadline = time.monotonic() + 240
        runs = {}
        while time.monotonic() < deadline:
            runs = {r: store.get_run(r) for r in run_ids}
            if all(run and run.status in TERMINAL for run in runs.values()):
                break
            time.sleep(0.5)
        logs = "\n".join(servers[n].log() for n in ("w1", "w2"))
        assert {r: run.status for r, run in runs.items() if run} == dict.fromkeys(
            run_ids, "completed"
        ), logs

        main_pids = {servers[n].proc.pid: n for n in ("w1", "w2")}  # type: ignore[union-attr]
        ran_on: dict[str, set[str]] = {}
        for run_id in run_ids:
            for attempt in store.step_attempts(run_id):
                pid = int(str(attempt.worker).rsplit(":", 1)[1])
                worker = main_pids.get(parent_of(pid) or -1, f"unknown pid {pid}")
                ran_on.setdefault(attempt.step_id, set()).add(worker)
        every = set().union(*ran_on.values())
        assert every == {"w1", "w2"}, ran_on
        # The step that decrypts the credential ran on both: the key opened it on each.
        assert ran_on["extract"] == {"w1", "w2"}, ran_on
        # One key from the environment: no host made a key file of its own.
        for name in hosts:
            assert not (tmp_path / name / "master.key").exists()
    finally:
        samples.close()
        for server in servers.values():
            server.stop()
