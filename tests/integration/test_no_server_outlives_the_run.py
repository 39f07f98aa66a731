"""The session-end check (tests/support/leaks.py) fails a run that leaves a server running,
names the test or fixture that started it, and stops it; a tidy run passes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from tests.integration.conftest import ROOT

LEAKY = """
import pytest
from tests.support.servers import start_redis

@pytest.fixture(scope="module")
def forgotten():
    yield start_redis()  # never stopped

def test_uses_servers_it_never_stops(forgotten):
    start_redis()
"""

# No cache in tmp_path, and the check as tests/conftest.py has it.
LEAK_CHECK = ("-p", "no:cacheprovider", "-p", "tests.support.leaks")

TIDY = """
import pytest
from tests.support.servers import start_redis

@pytest.fixture(scope="module")
def remembered():
    server = start_redis()
    yield server
    server.stop()

def test_stops_what_it_starts(remembered):
    start_redis().stop()
"""


def run_pytest(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_inner.py").write_text(text)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "test_inner.py", "-q", *LEAK_CHECK],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True
        if stat.rsplit(")", 1)[1].split()[0] == "Z":  # dead, waiting for init to reap it
            return True
        time.sleep(0.05)
    return False


def test_a_run_that_leaves_servers_running_fails_naming_who_started_them(
    tmp_path: Path,
) -> None:
    done = run_pytest(tmp_path, LEAKY)

    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 passed" in done.stdout  # the test itself passed: the leak fails the run
    assert "servers started by the tests are still running after the run" in done.stdout
    starters = re.findall(r"^  redis, started by (.+):$", done.stdout, re.MULTILINE)
    assert sorted(starters) == [
        "fixture 'forgotten' (set up for test_inner.py::test_uses_servers_it_never_stops)",
        "test test_inner.py::test_uses_servers_it_never_stops (call)",
    ]
    pids = re.findall(
        r"^    pid (\d+): \S*redis-server 127\.0\.0\.1:\d+", done.stdout, re.MULTILINE
    )
    assert len(pids) == 2, done.stdout
    # Reported, then stopped: the failed run leaves nothing behind either.
    for pid in pids:
        assert gone(int(pid)), f"the leaked redis-server {pid} is still running"


def test_a_run_that_stops_its_servers_passes(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, TIDY)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "still running" not in done.stdout
