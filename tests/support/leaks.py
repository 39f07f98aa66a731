"""No server started by the tests outlives the test run.

Every server the helpers start (redis-server, PostgreSQL, Celery workers, gunicorn,
Flower, moto, Azurite, the BigQuery emulator) runs in a session of its own; each is
recorded here with the test or fixture that started it. At the end of the session a
process still running in one of those sessions fails the run, named with its starter,
and is then stopped so that the machine is left clean.

A server is known by its session id and the start time of the session's leader, never
by a pid alone: pids are recycled (pid_max is 32768 here) and other test runs share the
machine, so a bare pid could name somebody else's process.

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
class Proc:
    pid: int
    state: str
    parent: int
    session: int
    start_ticks: int


@dataclass(frozen=True)
class Started:
    name: str
    # The session leader the helper started: the session id of the server and of every
    # process it starts (a Celery worker's children, PostgreSQL's backends).
    pid: int
    start_ticks: int
    started_by: str


STARTED: list[Started] = []


def _read(pid: int) -> Proc | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # After the command name: state, ppid, pgrp, session, ..., starttime (the 20th).
    return Proc(pid, fields[0], int(fields[1]), int(fields[3]), int(fields[19]))


def _processes() -> list[Proc]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            proc = _read(int(entry.name))
            if proc is not None and proc.state not in ("Z", "X"):
                found.append(proc)
    return found


def _starter() -> str:
    test = os.environ.get("PYTEST_CURRENT_TEST", "")
    fixture = _FIXTURE.get()
    if fixture:
        return f"fixture {fixture!r} (set up for {test.rsplit(' ', 1)[0] or 'the session'})"
    return f"test {test}" if test else "code outside any test"


def track(name: str, pid: int) -> None:
    """Record a server just started as the leader of its own session (start_new_session,
    or PostgreSQL's postmaster, which pg_ctl detaches with setsid)."""
    proc = _read(pid)
    if proc is not None:
        STARTED.append(Started(name, pid, proc.start_ticks, _starter()))


def _members(entry: Started, processes: list[Proc]) -> list[Proc]:
    members = [p for p in processes if p.session == entry.pid]
    leader = next((p for p in members if p.pid == entry.pid), None)
    if leader is not None and leader.start_ticks != entry.start_ticks:
        # The pid went to a new process that leads a session of its own: not ours. (A
        # session id can't be taken anew while a process of the old session is alive.)
        return []
    # And their children in sessions of their own (PostgreSQL's background processes).
    pids = {p.pid for p in members}
    grown = True
    while grown:
        children = [p for p in processes if p.parent in pids and p.pid not in pids]
        members += children
        pids |= {p.pid for p in children}
        grown = bool(children)
    return members


def leaked() -> list[tuple[Started, list[Proc]]]:
    processes = _processes()
    found = [(entry, _members(entry, processes)) for entry in STARTED]
    return [(entry, members) for entry, members in found if members]


def _cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    return ""


def _stop(members: list[Proc]) -> None:
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        for member in members:
            now = _read(member.pid)
            if now is not None and now.start_ticks == member.start_ticks:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(member.pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            members = [m for m in members if _still(m)]
            if not members:
                return
            time.sleep(0.05)


def _still(member: Proc) -> bool:
    now = _read(member.pid)
    return now is not None and now.start_ticks == member.start_ticks and now.state != "Z"


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
    for entry, members in left:
        lines.append(f"  {entry.name}, started by {entry.started_by}:")
        lines += [f"    pid {m.pid}: {_cmdline(m.pid)}" for m in members]
    lines.append("they are stopped now; stop each one in the test or fixture that starts it")
    message = "\n".join(lines)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_sep("=", "leaked servers", red=True)
        reporter.write_line(message)
    else:
        print(message)
    for _, members in left:
        _stop(members)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
