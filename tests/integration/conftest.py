"""Real servers for the integration tests: redis-server, PostgreSQL and a Celery worker."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pipeline.db import upgrade
from pipeline.services import Services, build_services
from pipeline.settings import Settings
from pipeline.state import TERMINAL
from tests.support.servers import (
    Server,
    create_pg_database,
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
    port = int(os.environ["REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
    server = start_redis(port)
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

    def wait(self, run_id: str, timeout: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.services.store.get_run(run_id)
            if run and run["status"] in TERMINAL:
                return run
            time.sleep(0.2)
        raise AssertionError(
            f"run {run_id} did not finish in {timeout}s: {self.services.store.get_run(run_id)}"
            f"\nworker log:\n{self.worker.log()}"
        )


def make_stack(
    kind: str,
    tmp: Path,
    redis_server: Server,
    postgres_server: Server | None,
    configs_dir: Path,
    concurrency: int = 2,
    warehouse_url: str | None = None,
    before_worker: Callable[[Services], None] | None = None,
) -> tuple[Stack, Callable[[], None]]:
    if kind == "postgres":
        assert postgres_server is not None
        db_url = create_pg_database(
            postgres_server, f"po_{tmp.name[-20:].lower()}".replace("-", "_")
        )
    else:
        db_url = f"sqlite:///{tmp / 'meta.db'}"
    env = {
        "DATABASE_URL": db_url,
        "WAREHOUSE_URL": warehouse_url or f"duckdb:///{tmp / 'warehouse.duckdb'}",
        "REDIS_URL": redis_server.url,
        "PIPELINE_OPS_VAR_DIR": str(tmp),
        "PIPELINE_OPS_CONFIGS_DIR": str(configs_dir),
        "PIPELINE_OPS_HEARTBEAT_INTERVAL": "1",
    }
    settings = Settings.from_env({**os.environ, **env})
    upgrade(settings.database_url)
    from tasks.canvas import CeleryDispatcher

    services = build_services(settings, CeleryDispatcher())
    if before_worker is not None:
        before_worker(services)
    worker = start_worker(env, concurrency=concurrency, name=f"w{kind}", log_dir=tmp)
    return Stack(kind, settings, services, worker, env), worker.stop


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


class ScriptedHTTPServer:
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

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def script(self, *replies: tuple[int, dict[str, str], bytes]) -> None:
        with self.lock:
            self.replies = list(replies)
            self.requests = []

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def http_server() -> Iterator[ScriptedHTTPServer]:
    server = ScriptedHTTPServer()
    yield server
    server.close()
