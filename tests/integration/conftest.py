"""Real servers for the integration tests: redis-server, PostgreSQL and a Celery worker."""

from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Protocol

import pytest

from pipeline.bootstrap import Services, build_services
from pipeline.settings import Settings
from pipeline.storage.db import upgrade
from pipeline.storage.records import RunRecord, StepAttempt
from pipeline.storage.state import TERMINAL
from quota.gate import LedgerGate
from tests.support.doubles import ManualClock, NullDispatcher
from tests.support.servers import (
    LoopbackHTTPServer,
    Server,
    app_env,
    create_pg_database,
    port_of,
    start_postgres,
    start_redis,
    start_worker,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Server]:
    server = start_redis(port_of(os.environ["REDIS_URL"]))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Server]:
    server = start_postgres()
    yield server
    server.stop()


@dataclass
class Stack:
    """A metadata DB, a DuckDB warehouse, a worker subprocess and in-process services."""

    kind: str
    settings: Settings
    services: Services
    worker: Server
    env: dict[str, str]

    def wait(self, run_id: str, timeout: float = 90) -> RunRecord:
        return wait_run(self, run_id, timeout)


class WithWorker(Protocol):
    """In-process services beside the worker that runs their runs (a Stack or a test's rig)."""

    services: Services
    worker: Server


def wait_run(rig: WithWorker, run_id: str, timeout: float = 90) -> RunRecord:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = rig.services.store.get_run(run_id)
        if run and run.status in TERMINAL:
            return run
        time.sleep(0.2)
    raise AssertionError(
        f"run {run_id} did not finish in {timeout}s: {rig.services.store.get_run(run_id)}"
        f"\nworker log:\n{rig.worker.log()}"
    )


def wait_for_attempt(
    rig: WithWorker, run_id: str, step_id: str, timeout: float = 30
) -> StepAttempt:
    """The attempt of `step_id` once it is running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for attempt in rig.services.store.step_attempts(run_id):
            if attempt.step_id == step_id and attempt.status == "running":
                return attempt
        time.sleep(0.05)
    raise AssertionError(f"{step_id} never started:\n{rig.worker.log()}")


def settled_usage(services: Services, org: str, timeout: float = 10) -> dict[str, Any]:
    """The org's quota usage once its slots are released (or the last reading after timeout).

    A run is marked ended first and its slot released right after, by the process that
    ended it, so a reader may see `completed` a moment before the release commits.
    """
    deadline = time.monotonic() + timeout
    usage = services.gate.usage(org)
    while usage["usage"]["concurrent_running"] and time.monotonic() < deadline:
        time.sleep(0.1)
        usage = services.gate.usage(org)
    return usage


def write_configs(tmp: Path, key: str, text: str) -> Path:
    """A configs directory under `tmp` holding one pipeline file `provider/domain/name`."""
    configs = tmp / "configs"
    provider, domain, name = key.split("/")
    (configs / provider / domain).mkdir(parents=True)
    (configs / provider / domain / f"{name}.yml").write_text(text)
    return configs


def make_stack(
    kind: str,
    tmp: Path,
    redis_server: Server,
    postgres_server: Server | None,
    configs_dir: Path,
    concurrency: int = 2,
    warehouse_url: str | None = None,
    before_worker: Callable[[Services], None] | None = None,
    worker_app: str = "tasks.celery_app",
    extra_env: dict[str, str] | None = None,
) -> tuple[Stack, Callable[[], None]]:
    if kind == "postgres":
        assert postgres_server is not None
        db_url = create_pg_database(
            postgres_server, f"po_{tmp.name[-20:].lower()}".replace("-", "_")
        )
    else:
        db_url = f"sqlite:///{tmp / 'meta.db'}"
    env = {
        **app_env(tmp, db_url, redis_server.url, configs_dir, warehouse_url),
        "PIPELINE_OPS_HEARTBEAT_INTERVAL": "1",
        **(extra_env or {}),
    }
    settings = Settings.from_env({**os.environ, **env})
    upgrade(settings.database_url)
    from pipeline.queue import CeleryDispatcher

    services = build_services(settings, CeleryDispatcher())
    if before_worker is not None:
        before_worker(services)
    worker = start_worker(
        env, concurrency=concurrency, name=f"w{kind}", log_dir=tmp, app=worker_app
    )
    return Stack(kind, settings, services, worker, env), worker.stop


def ledger_services(
    kind: str, tmp: Path, postgres_server: Server, key: str, text: str, clock: ManualClock
) -> tuple[Services, LedgerGate, Server]:
    """Services on `clock` over a SQLite or PostgreSQL ledger and a redis-server of their own
    (tests flush and stop it; the caller stops it at the end), with one pipeline and org acme.
    """
    if kind == "postgres":
        db_url = create_pg_database(postgres_server, f"quota_{uuid.uuid4().hex[:12]}")
    else:
        db_url = f"sqlite:///{tmp / 'meta.db'}"
    configs = write_configs(tmp, key, text)
    server = start_redis()
    settings = Settings.from_env(app_env(tmp, db_url, server.url, configs))
    upgrade(settings.database_url)
    services = build_services(settings, NullDispatcher(), clock=clock, db_time=clock)
    services.orgs.create("acme")
    gate = services.gate
    assert isinstance(gate, LedgerGate) and gate.mirror is not None
    return services, gate, server


@pytest.fixture(scope="session")
def test_configs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's configs plus the test pipelines; tests may add files to it."""
    target = tmp_path_factory.mktemp("configs")
    shutil.copytree(ROOT / "configs", target, dirs_exist_ok=True)
    shutil.copytree(HERE / "pipelines", target / "test", dirs_exist_ok=True)
    return target


def write_pipeline(stack: Stack, key: str, text: str) -> None:
    """Add a pipeline file `provider/domain/name` to the stack's configs directory."""
    provider, domain, name = key.split("/")
    path = stack.settings.configs_dir / "test" / provider / domain / f"{name}.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    stack.services.catalog.refresh()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    redis_server: Server,
    test_configs_dir: Path,
) -> Iterator[Stack]:
    pg = request.getfixturevalue("postgres_server") if request.param == "postgres" else None
    tmp = tmp_path_factory.mktemp(f"stack-{request.param}")
    built, stop = make_stack(request.param, tmp, redis_server, pg, test_configs_dir)
    yield built
    stop()


@pytest.fixture(scope="module")
def sqlite_stack(
    tmp_path_factory: pytest.TempPathFactory, redis_server: Server, test_configs_dir: Path
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("stack-sqlite")
    built, stop = make_stack("sqlite", tmp, redis_server, None, test_configs_dir)
    yield built
    stop()


class ScriptedHTTPServer(LoopbackHTTPServer):
    """A loopback HTTP server answering from a script of (status, headers, body) replies."""

    def __init__(self) -> None:
        self.replies: list[tuple[int, dict[str, str], bytes]] = []
        self.requests: list[str] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with outer.lock:
                    outer.requests.append(self.path)
                    status, headers, body = (
                        outer.replies.pop(0) if outer.replies else (404, {}, b"{}")
                    )
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return

        super().__init__(Handler)

    def script(self, *replies: tuple[int, dict[str, str], bytes]) -> None:
        with self.lock:
            self.replies = list(replies)
            self.requests = []


@pytest.fixture
def http_server() -> Iterator[ScriptedHTTPServer]:
    server = ScriptedHTTPServer()
    yield server
    server.close()
