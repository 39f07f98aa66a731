"""The BigQuery emulator (bqemulator) for the integration tests, set up offline.

bqemulator pins its own duckdb, so it lives in its own virtual environment, cached at
`~/.cache/pipeline-ops/bqemulator-venv` (or `$PIPELINE_OPS_CACHE_DIR/bqemulator-venv`) and
reused across runs. At start it runs `INSTALL spatial`, which would download; the
pip-installed copy of the extension is put where DuckDB looks first, under a temporary
HOME. See shared/reference/bigquery_emulator.md.

`make bqemulator` (a prerequisite of `make test`) runs `python -m
tests.integration.bigquery_emulator install`, so the slow part happens once, up front.
Tests that need the emulator skip with the reason where it cannot start; with CI=true
they fail instead, so CI never passes by skipping them.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import Server, free_port, wait_for
from tests.support.tools import CACHE_DIR, install_main, install_once, shared_server

PACKAGES = ("bqemulator==1.4.0", "duckdb==1.5.5", "duckdb-extension-spatial==1.5.5", "numpy")
DUCKDB_VERSION = "v1.5.5"
PROJECT = "test-proj"
VENV = CACHE_DIR / "bqemulator-venv"


class EmulatorUnavailable(RuntimeError):
    """The emulator could not be installed or started here."""


def _python311() -> str:
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    found = shutil.which("python3.11")
    if not found:
        raise EmulatorUnavailable("python3.11 not found to create the emulator's venv")
    return found


def ensure_venv(venv: Path = VENV) -> Path:
    """Create the emulator's venv once (about a minute); later calls return at once."""

    def install() -> None:
        steps = [
            [_python311(), "-m", "venv", str(venv)],
            [str(venv / "bin/python"), "-m", "pip", "install", "-q", "--no-input", *PACKAGES],
        ]
        for cmd in steps:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
            if done.returncode != 0:
                tail = (done.stderr or done.stdout)[-2000:]
                raise EmulatorUnavailable(f"{' '.join(cmd[:4])} failed:\n{tail}")

    ready = (venv / "bin/bqemulator").exists
    return install_once(venv, "\n".join(PACKAGES), ready, install)


def spatial_extension(venv: Path) -> Path:
    pattern = f"lib/python*/site-packages/duckdb_extension_spatial/extensions/{DUCKDB_VERSION}/"
    found = sorted(venv.glob(pattern + "spatial.duckdb_extension"))
    if not found:
        raise EmulatorUnavailable(f"spatial extension not found in {venv}")
    return found[0]


def _duckdb_platform() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "linux_amd64", "amd64": "linux_amd64", "aarch64": "linux_arm64"}.get(
        machine, f"linux_{machine}"
    )


def start_emulator(venv: Path, timeout: float = 60) -> Server:
    workdir = Path(tempfile.mkdtemp(prefix="po-bqemu-"))
    ext_dir = workdir / "home/.duckdb/extensions" / DUCKDB_VERSION / _duckdb_platform()
    ext_dir.mkdir(parents=True)
    shutil.copy(spatial_extension(venv), ext_dir)
    rest, grpc = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["HOME"] = str(workdir / "home")
    log_path = workdir / "bqemulator.log"
    cmd = [str(venv / "bin/bqemulator"), "start", "--rest-port", str(rest)]
    cmd += ["--grpc-port", str(grpc), "--project", PROJECT, "--ephemeral"]
    cmd += ["--log-level", "warning"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    url = f"http://127.0.0.1:{rest}"
    server = Server("bqemulator", proc, url, workdir, log_path)

    def up() -> bool:
        if proc.poll() is not None:
            raise EmulatorUnavailable(f"bqemulator exited:\n{server.log()}")
        with urllib.request.urlopen(f"{url}/bigquery/v2/projects/{PROJECT}/datasets", timeout=2):
            return True

    try:
        wait_for(up, timeout, "bqemulator")
    except Exception as exc:
        log_tail = server.log()
        server.stop()
        raise EmulatorUnavailable(f"{exc}\n{log_tail}") from None
    return server


# One emulator per test process, shared by every module that imports the fixture.
_shared: dict[str, object] = {}


@pytest.fixture(scope="session")
def bigquery_emulator() -> Iterator[Server]:
    """A running emulator for the session; its `url` is the REST endpoint."""
    yield from shared_server(_shared, "BigQuery emulator", lambda: start_emulator(ensure_venv()))


if __name__ == "__main__":
    sys.exit(
        install_main(
            sys.argv,
            "tests.integration.bigquery_emulator",
            "bqemulator",
            ensure_venv,
            EmulatorUnavailable,
        )
    )
