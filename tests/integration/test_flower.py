"""Flower with basic auth sees the running worker through its API and refuses requests
without credentials. (The Procfile's own `flower` line, as written, is started by
tests/integration/test_procfile.py.)"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import Stack
from tests.support.servers import ROOT, VENV_BIN, Server, _popen, free_port, wait_for

USER, PASSWORD = "ops", "flower-test-pw"


@pytest.fixture(scope="module")
def flower(sqlite_stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = free_port()
    log_path = Path(tmp_path_factory.mktemp("flower")) / "flower.log"
    proc = _popen(
        [
            str(VENV_BIN / "celery"),
            "-A",
            "tasks.celery_app",
            "flower",
            "--address=127.0.0.1",
            f"--port={port}",
            f"--basic-auth={USER}:{PASSWORD}",
        ],
        log_path,
        env={**os.environ, **sqlite_stack.env},
        cwd=ROOT,
    )
    server = Server("flower", proc, f"http://127.0.0.1:{port}", None, log_path)

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"flower exited:\n{server.log()}")
        return httpx.get(server.url + "/healthcheck", timeout=1).status_code == 200

    try:
        wait_for(up, 60, "flower")
    except Exception:
        server.stop()
        raise
    yield server
    server.stop()


def test_flower_lists_the_worker_with_auth_and_refuses_without(
    flower: Server, sqlite_stack: Stack
) -> None:
    assert httpx.get(flower.url + "/api/workers", timeout=10).status_code == 401
    wrong = httpx.get(flower.url + "/api/workers", auth=(USER, "wrong"), timeout=10)
    assert wrong.status_code == 401

    def listed() -> bool:
        response = httpx.get(
            flower.url + "/api/workers", params={"refresh": "1"}, auth=(USER, PASSWORD), timeout=10
        )
        assert response.status_code == 200, response.text
        return any(name.startswith("wsqlite@") for name in response.json())

    try:
        wait_for(listed, 30, "the worker in flower's /api/workers")
    except TimeoutError:
        raise AssertionError(f"worker not listed; flower log:\n{flower.log()}") from None


def test_flower_serves_nothing_without_credentials(flower: Server) -> None:
    for path in ("/", "/workers", "/api/tasks"):
        response = httpx.get(flower.url + path, timeout=10, follow_redirects=False)
        assert response.status_code == 401, path
