"""Starting the Procfile's lines as written, with only the documented environment.

Used by tests/integration/test_procfile.py (each line, checked) and test_walkthrough.py
(the README's "Run it for real" on top of them).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.support.servers import ROOT, VENV_BIN, Server, _popen, free_port

FLOWER_USER, FLOWER_PASSWORD = "ops", "procfile-flower-pw"


def procfile_lines() -> dict[str, str]:
    lines = {}
    for raw in (ROOT / "Procfile").read_text().splitlines():
        if raw.strip() and not raw.lstrip().startswith("#"):
            name, _, command = raw.partition(":")
            lines[name.strip()] = command.strip()
    return lines


def documented_env(tmp: Path, redis_url: str) -> dict[str, str]:
    """Only what README's Configuration table names, plus PATH to find the programs (as
    `make up` puts .venv/bin first) and HOME."""
    return {
        "PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp),
        "DATABASE_URL": f"sqlite:///{tmp / 'pipeline_ops.db'}",
        "REDIS_URL": redis_url,
        "WAREHOUSE_URL": f"duckdb:///{tmp / 'warehouse.duckdb'}",
        "PIPELINE_OPS_VAR_DIR": str(tmp),
        "PORT": str(free_port()),
        "FLOWER_PORT": str(free_port()),
        "FLOWER_BASIC_AUTH": f"{FLOWER_USER}:{FLOWER_PASSWORD}",
        "WEB_CONCURRENCY": "1",
        "WORKER_CONCURRENCY": "2",
    }


def start_line(name: str, line: str, env: dict[str, str], tmp: Path) -> Server:
    log_path = tmp / f"{name}.log"
    proc = _popen(["sh", "-c", line], log_path, env=env, cwd=ROOT)
    return Server(name, proc, "", None, log_path)


def up(server: Server, check: Callable[[], object], timeout: float = 60) -> None:
    """Wait until `check()` is true; a process that exits fails at once, with its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.proc is not None
        if server.proc.poll() is not None:
            raise AssertionError(f"{server.name} exited:\n{server.log()}")
        try:
            if check():
                return
        except httpx.HTTPError:
            pass  # not listening yet
        time.sleep(0.2)
    raise AssertionError(f"{server.name} did not come up in {timeout}s:\n{server.log()}")


def left_running(var_dir: Path, timeout: float = 30) -> list[str]:
    """Processes of this deployment still alive once they had `timeout` seconds to stop
    (children exit a moment after the parent they were signalled with)."""
    deadline = time.monotonic() + timeout
    while (found := processes_of(var_dir)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def processes_of(var_dir: Path) -> list[str]:
    """Command lines of live processes started with PIPELINE_OPS_VAR_DIR=var_dir."""
    marker = f"PIPELINE_OPS_VAR_DIR={var_dir}\0".encode()
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker in (proc / "environ").read_bytes():
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue  # gone meanwhile, or not ours to read
    return found


def pipeline_ops(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`pipeline-ops ARGS…` as an operator runs it, in the repository, with `env` only."""
    return subprocess.run(
        ["pipeline-ops", *args], env=env, cwd=ROOT, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
