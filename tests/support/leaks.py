"""No server started by the tests outlives the test run.

Every `Server` the helpers start (redis-server, PostgreSQL, Celery workers, gunicorn,
Flower, moto, Azurite, the BigQuery emulator) is recorded here with the test or fixture
that started it. At the end of the session a server still running fails the run, named
with its starter, and is then stopped so that the machine is left clean.

A pytest plugin: tests/conftest.py imports its hooks; `pytest -p tests.support.leaks`
loads it elsewhere (the test of the check itself does).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import signal
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

_FIXTURE: contextvars.ContextVar[str] = contextvars.ContextVar("leaks_fixture", default="")


@dataclass(frozen=True)
class Started:
    name: str
    pid: int
    # Our servers run in a session of their own (start_new_session): their process group
    # is `pid`, and a group member still alive (a worker's child) is a leak as well.
    group: bool
    url: str
    started_by: str
    # /proc start time, so a recycled pid is not mistaken for the server.
    start_ticks: str


STARTED: list[Started] = []


def _start_ticks(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # Field 22 (starttime), counted after the parenthesised command name.
    return stat.rsplit(")", 1)[1].split()[19]


def _starter() -> str:
    test = os.environ.get("PYTEST_CURRENT_TEST", "")
    fixture = _FIXTURE.get()
    if fixture:
        return f"fixture {fixture!r} (set up for {test.rsplit(' ', 1)[0] or 'the session'})"
    return f"test {test}" if test else "code outside any test"


def track(name: str, pid: int, url: str = "", group: bool = True) -> None:
    """Record a server process started now (tests/support/servers.py calls this)."""
    STARTED.append(Started(name, pid, group, url, _starter(), _start_ticks(pid)))


def _alive(entry: Started) -> bool:
    if entry.start_ticks and _start_ticks(entry.pid) == entry.start_ticks:
        with contextlib.suppress(OSError):
            return "Z" not in Path(f"/proc/{entry.pid}/stat").read_text().rsplit(")", 1)[1][:3]
    if entry.group:
        try:
            os.killpg(entry.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return _group_has_live_members(entry.pid)
    return False


def _group_has_live_members(pgid: int) -> bool:
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            # fields: state, ppid, pgrp, ...
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def leaked() -> list[Started]:
    return [entry for entry in STARTED if _alive(entry)]


def _stop(entry: Started) -> None:
    kill = os.killpg if entry.group else os.kill
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill(entry.pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _alive(entry):
                return
            time.sleep(0.05)


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: Any, request: Any) -> Generator[None, Any, Any]:
    token = _FIXTURE.set(fixturedef.argname)
    try:
        return (yield)
    finally:
        _FIXTURE.reset(token)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Session fixtures were torn down with the last test: whatever runs now, leaked.
    left = leaked()
    if not left:
        return
    lines = ["servers started by the tests are still running after the run:"]
    for entry in left:
        where = f" at {entry.url}" if entry.url else ""
        lines.append(f"  {entry.name} (pid {entry.pid}{where}), started by {entry.started_by}")
    lines.append("they are stopped now; stop each one in the test or fixture that starts it")
    message = "\n".join(lines)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_sep("=", "leaked servers", red=True)
        reporter.write_line(message)
    else:
        print(message)
    for entry in left:
        _stop(entry)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
