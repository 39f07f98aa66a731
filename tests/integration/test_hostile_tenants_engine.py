"""A hostile tenant against the engine's own safeguards, on a live stack.

redis-server, a real Celery prefork worker subprocess (one process, so a leak between
two orgs' steps would show in it) and gunicorn. The tenant's steps are test processors
(tests/support/engine_processors.py) run by the production task code. Each attack must
now fail safely: nothing written, nothing echoed, other orgs' runs and logs unchanged,
the worker still serving other orgs.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from pipeline.runs.service import RunRequest
from pipeline.storage import state
from tests.integration.conftest import (
    Stack,
    make_stack,
    settled_usage,
    wait_for_attempt,
    write_pipeline,
)
from tests.support import engine_processors
from tests.support.servers import ROOT, LoopbackHTTPServer, Server, start_gunicorn

DAY = date(2026, 11, 2)

KILL = """
pipeline_id: test_poison_pill
name: A step that kills its worker process on every delivery
provider: poison
domain: kill
steps:
  - step_id: explode
    ps_type: test.kill_self
    timeout_seconds: 60
"""
QUICK = """
pipeline_id: test_quick
name: One quick step
provider: engine
domain: noop
steps:
  - step_id: only
    ps_type: generic.noop
"""
SLEEPY = """
pipeline_id: test_sleepy
name: One step that sleeps
provider: engine
domain: sleep
steps:
  - step_id: nap
    ps_type: generic.noop
    config: {{sleep_seconds: {seconds}}}
    timeout_seconds: 120
"""
PAGES = """
pipeline_id: test_slow_pages
name: Pages from a provider that answers when the test lets it
provider: fence
domain: slow
steps:
  - step_id: extract
    ps_type: test.slow_pages
    config: {{url: "{url}", pages: 3}}
    timeout_seconds: 120
"""
ECHO = """
pipeline_id: test_echo_credential
name: Logs and fails with the decrypted credential
provider: openai
domain: payg
steps:
  - step_id: echo
    ps_type: test.echo_credential
"""
HUGE = """
pipeline_id: test_huge_error
name: Fails with a 5 MiB provider answer
provider: engine
domain: huge
steps:
  - step_id: fetch
    ps_type: test.huge_error
    config: {error_bytes: 5242880}
"""


class PageServer(LoopbackHTTPServer):
    """Serves /page/N (two rows each) once `release` is set; counts what it was asked."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.asked: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.asked.append(self.path)
                outer.release.wait(60)
                page = int(self.path.rsplit("/", 1)[1])
                rows = [{"day": DAY.isoformat(), "page": page, "n": i} for i in range(2)]
                body = json.dumps({"data": rows}).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    return  # the step was interrupted mid-request and asked again

            def log_message(self, *args: object) -> None:
                return

        super().__init__(Handler)


@dataclass
class Rig:
    stack: Stack
    web: Server
    pages: PageServer
    keys: dict[str, str]

    @property
    def services(self) -> Any:
        return self.stack.services

    def org(self, slug: str) -> str:
        if slug not in self.keys:
            self.keys[slug] = self.services.orgs.create(slug)
        return self.keys[slug]

    def api(self, method: str, path: str, org: str, **kw: Any) -> httpx.Response:
        headers = {"X-API-Key": self.org(org), **kw.pop("headers", {})}
        return httpx.request(method, f"{self.web.url}{path}", headers=headers, timeout=30, **kw)


@pytest.fixture(scope="module")
def rig(
    tmp_path_factory: pytest.TempPathFactory, redis_server: Server, test_configs_dir: Path
) -> Iterator[Rig]:
    engine_processors.register()  # the test process validates pipelines naming them
    pages = PageServer()
    tmp = tmp_path_factory.mktemp("hostile-engine")
    stack, stop = make_stack(
        "sqlite",
        tmp,
        redis_server,
        None,
        test_configs_dir,
        concurrency=1,
        worker_app="tests.support.engine_app",
    )
    for key, text in {
        "poison/kill/self": KILL,
        "engine/noop/quick": QUICK,
        "engine/sleep/nap": SLEEPY.format(seconds=20),
        "fence/slow/pages": PAGES.format(url=pages.url),
        "openai/payg/echo": ECHO,
        "engine/huge/error": HUGE,
    }.items():
        write_pipeline(stack, key, text)
    web = start_gunicorn(
        stack.env, workers=2, log_dir=tmp, app="tests.support.engine_app:create_app()"
    )
    yield Rig(stack, web, pages, {})
    pages.release.set()
    web.stop()
    stop()
    pages.close()


def start(rig: Rig, org: str, path: str, credential: str | None = None) -> str:
    rig.org(org)
    provider, domain, name = path.split("/")
    req = RunRequest(org, provider, domain, name, DAY, DAY, credential_id=credential)
    return str(rig.services.runs.start(req).run_id)


def running(rig: Rig, org: str) -> int:
    return int(settled_usage(rig.services, org)["usage"]["concurrent_running"])


def rows_by_run(stack: Stack, table: str) -> dict[str, int]:
    path = stack.settings.warehouse_url.split("///", 1)[1]
    if not Path(path).exists():
        return {}
    con = duckdb.connect(path, read_only=True)
    try:
        found = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]
        ).fetchone()
        if not found or not found[0]:
            return {}
        rows = con.execute(
            f"SELECT x_run_id, count(*) FROM fence_org_dev.{table} GROUP BY 1"
        ).fetchall()
    finally:
        con.close()
    return {run_id: int(n) for run_id, n in rows}


# -- a step that kills its worker process on every delivery ----------------------------------


def test_a_step_that_kills_its_worker_every_time_fails_after_three_lost_workers(rig: Rig) -> None:
    run_id = start(rig, "poison_org", "poison/kill/self")

    run = rig.stack.wait(run_id, timeout=90)

    assert run.status == state.FAILED
    assert run.error_message == (
        "step explode failed: the worker was lost 3 times running this step; out of memory? "
        "(a step fails after PIPELINE_OPS_MAX_LOST_WORKERS=3 lost workers)"
    )
    (attempt,) = rig.services.store.step_attempts(run_id)
    # One attempt, delivered four times: three deaths, then the refusal.
    assert (attempt.attempt, attempt.status, attempt.lost_workers) == (1, "failed", 3)
    killed = [
        line.message
        for line in rig.services.store.lines(run_id)
        if line.message.startswith("about to be killed")
    ]
    assert len(killed) == 3
    assert running(rig, "poison_org") == 0
    assert rig.services.runs.reap() == []  # nothing left for the reaper
    # The worker pool still serves another org.
    other = rig.stack.wait(start(rig, "bystander_org", "engine/noop/quick"), timeout=60)
    assert other.status == state.COMPLETED, other.error_message


# -- cancel fences the run --------------------------------------------------------------------


def test_a_cancelled_run_keeps_its_key_until_its_step_stops_and_never_writes(rig: Rig) -> None:
    rig.pages.release.clear()
    first = start(rig, "fence_org", "fence/slow/pages")
    wait_for_attempt(rig.stack, first, "extract")
    deadline = time.monotonic() + 30
    while not rig.pages.asked and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rig.pages.asked, "the step never asked for a page"

    cancel = rig.api("POST", f"/pipelines/cancel/fence_org/{first}", "fence_org")
    assert cancel.status_code == 202, cancel.text
    assert cancel.json()["status"] == state.CANCELLING

    # The step is still fetching: the key and the slot are still the cancelling run's.
    again = rig.api("POST", "/pipelines/run/fence_org/fence/slow/pages", "fence_org",
                    json={"start_date": DAY.isoformat(), "end_date": DAY.isoformat()})  # fmt: skip
    assert again.status_code == 409, again.text
    problem = again.json()
    assert problem["existing_run_id"] == first
    assert f"run {first} " in problem["detail"] and "is being cancelled" in problem["detail"]
    assert running(rig, "fence_org") == 1
    assert rig.services.store.get_run(first).status == state.CANCELLING

    rig.pages.release.set()  # the stubborn step gets its pages and tries to write
    run = rig.stack.wait(first, timeout=60)
    assert run.status == state.CANCELLED
    (attempt,) = rig.services.store.step_attempts(first)
    assert attempt.status == state.CANCELLED
    assert "write refused" in attempt.error or "was cancelled" in attempt.error
    moves = [(t.from_status, t.to_status) for t in rig.services.store.transitions(first)]
    assert moves[-2:] == [(state.RUNNING, state.CANCELLING), (state.CANCELLING, state.CANCELLED)]
    assert running(rig, "fence_org") == 0
    assert rows_by_run(rig.stack, "slow_pages_rows") == {}  # nothing of the cancelled run

    rerun = rig.api("POST", "/pipelines/run/fence_org/fence/slow/pages", "fence_org",
                    json={"start_date": DAY.isoformat(), "end_date": DAY.isoformat()})  # fmt: skip
    assert rerun.status_code == 202, rerun.text
    second = rerun.json()["run_id"]
    done = rig.stack.wait(second, timeout=60)
    assert done.status == state.COMPLETED, done.error_message
    # The table holds exactly the completed run's rows.
    assert rows_by_run(rig.stack, "slow_pages_rows") == {second: 6}
    time.sleep(2)  # a late write of the cancelled run would land now
    assert rows_by_run(rig.stack, "slow_pages_rows") == {second: 6}


# -- deadlines in the database's clock -------------------------------------------------------

SKEWED_REAPER = """
import json, sys
from datetime import UTC, datetime, timedelta
from pipeline.bootstrap import build_services
from pipeline.settings import Settings
from tests.support.doubles import NullDispatcher

def ahead():
    return datetime.now(UTC) + timedelta(seconds=150)

services = build_services(Settings.from_env(), NullDispatcher(), clock=ahead)
print(json.dumps(services.runs.reap()))
"""


def test_a_reaper_whose_clock_runs_150_s_ahead_leaves_a_healthy_run_alone(rig: Rig) -> None:
    run_id = start(rig, "skew_org", "engine/sleep/nap")
    wait_for_attempt(rig.stack, run_id, "nap")
    time.sleep(1.5)  # a heartbeat or two (every second, 120 s timeout)

    reaper = subprocess.run(
        [sys.executable, "-c", SKEWED_REAPER],
        env={**os.environ, **rig.stack.env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert reaper.returncode == 0, reaper.stderr
    assert json.loads(reaper.stdout.strip().splitlines()[-1]) == []
    assert rig.services.store.get_run(run_id).status == state.RUNNING
    rig.services.runs.cancel("skew_org", run_id)
    assert rig.stack.wait(run_id, timeout=30).status == state.CANCELLED


# -- redaction is scoped to the step that decrypted the secret ---------------------------------


def test_one_orgs_credential_values_never_rewrite_another_orgs_logs(rig: Rig) -> None:
    victim = "victim_org"
    rig.org(victim)
    creds = rig.services.credentials
    rig.org("tenant_a")
    # Non-secret fields holding common words and the victim's slug, beside a real secret.
    creds.add("tenant_a", "openai", "Words", {
        "admin_key": "sk-admin-realsecret-0042",
        "base_url": f"https://completed.example/attempt/{victim}",
    }, "words")  # fmt: skip
    # Secret fields whose values are ordinary words: "completed", the victim's slug.
    creds.add("tenant_a", "openai", "Words as secrets",
              {"admin_key": "completed", "api_key": victim}, "secretwords")  # fmt: skip

    words = rig.stack.wait(start(rig, "tenant_a", "openai/payg/echo", "words"), timeout=60)
    secret_words = rig.stack.wait(
        start(rig, "tenant_a", "openai/payg/echo", "secretwords"), timeout=60
    )
    bystander = rig.stack.wait(start(rig, victim, "engine/noop/quick"), timeout=60)

    # The declared secret is masked in the tenant's own run, everywhere it is stored...
    assert words.status == state.FAILED
    assert "sk-admin-realsecret-0042" not in words.error_message
    assert "admin_key=[REDACTED]" in words.error_message
    # ... and its non-secret text is left as it was.
    assert f"base_url=https://completed.example/attempt/{victim}" in words.error_message
    download = rig.api("GET", f"/pipelines/logs/tenant_a/{words.run_id}/download", "tenant_a").text
    assert "sk-admin-realsecret-0042" not in download
    assert f"https://completed.example/attempt/{victim}" in download
    # Secret values that are words are masked in that step only.
    assert secret_words.error_message.count("[REDACTED]") == 2
    # The victim's history is untouched, though it ran in the same worker process after.
    assert bystander.status == state.COMPLETED
    lines = [line.message for line in rig.services.store.lines(bystander.run_id)]
    assert lines[-1] == "run completed"
    assert all("[REDACTED]" not in line for line in lines)
    status = rig.api("GET", f"/pipelines/status/{victim}/{bystander.run_id}", victim).json()
    assert status["status"] == "completed" and status["org_slug"] == victim


# -- stored text is capped -----------------------------------------------------------------------


def test_a_5_mib_provider_answer_is_stored_capped_everywhere(rig: Rig) -> None:
    run = rig.stack.wait(start(rig, "huge_org", "engine/huge/error"), timeout=60)
    limit = rig.stack.settings.max_stored_text

    assert run.status == state.FAILED
    assert len(run.error_message.encode()) <= limit
    assert run.error_message.endswith("MiB]")
    assert "… [truncated 5.0 MiB]" in run.error_message
    store = rig.services.store
    texts = [a.error for a in store.step_attempts(run.run_id)]
    texts += [t.reason or "" for t in store.transitions(run.run_id)]
    texts += [line.message for line in store.lines(run.run_id)]
    assert max(len(t.encode()) for t in texts) <= limit
    for path in (
        f"/pipelines/status/huge_org/{run.run_id}",
        f"/pipelines/logs/huge_org/{run.run_id}",
        f"/pipelines/logs/huge_org/{run.run_id}/download",
    ):
        answer = rig.api("GET", path, "huge_org")
        assert answer.status_code == 200
        assert len(answer.content) < 64 * 1024, path


# -- the API survives slow clients -----------------------------------------------------------------


def test_slow_unauthenticated_clients_do_not_stall_health(rig: Rig) -> None:
    host, port = "127.0.0.1", rig.web.port
    stop = threading.Event()
    sockets = [socket.create_connection((host, port), timeout=5) for _ in range(6)]

    def trickle(sock: socket.socket) -> None:
        request = b"GET /pipelines/history/victim_org HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 500
        for byte in request:
            if stop.is_set():
                return
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                return
            time.sleep(0.2)

    threads = [threading.Thread(target=trickle, args=(s,), daemon=True) for s in sockets]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.5)  # every slow connection has started its headers
        began = time.monotonic()
        health = httpx.get(f"{rig.web.url}/health", timeout=20)
        took = time.monotonic() - began
    finally:
        stop.set()
        for sock in sockets:
            sock.close()
    assert health.status_code in (200, 503)
    assert "checks" in health.json()
    # A functional bound, kept generous: with 2 sync workers it never answered (20 s timeout).
    assert took < 10, f"/health took {took:.1f}s behind 6 slow clients"
