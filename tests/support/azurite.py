"""Azurite (Microsoft's Azure Storage emulator, from npm) for the Azure integration tests.

Installed once into `~/.cache/pipeline-ops/azurite` (or `$PIPELINE_OPS_CACHE_DIR/azurite`)
with `npm install --prefix`, then reused offline. The version is pinned to 3.35.0: later
releases need Node >= 22 and this machine (and CI) runs Node 20.

`make azurite` (a prerequisite of `make test`) runs `python -m tests.support.azurite
install`, so the download happens once, up front. The `azurite_blob` fixture starts only the
Blob service on a free loopback port with its data in a temp dir. Tests that need it skip with the
reason where node/npm are missing or the install fails; with CI=true they fail instead, so CI
never passes by skipping them.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import Server, free_port, wait_for

PACKAGE = "azurite@3.35.0"
CACHE_DIR = Path(os.environ.get("PIPELINE_OPS_CACHE_DIR") or Path.home() / ".cache/pipeline-ops")
PREFIX = CACHE_DIR / "azurite"
_STAMP = ".pipeline-ops-installed"

# The well-known development account every Azurite instance accepts (published by Microsoft
# in the Azurite README); it is not a secret.
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


class AzuriteUnavailable(RuntimeError):
    """Azurite could not be installed or started here."""


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def blob_main(prefix: Path = PREFIX) -> Path:
    return prefix / "node_modules/azurite/dist/src/blob/main.js"


def ensure_installed(prefix: Path = PREFIX) -> Path:
    """`npm install` Azurite once (tens of seconds); later calls return at once."""
    stamp = prefix / _STAMP
    if stamp.is_file() and stamp.read_text() == PACKAGE and blob_main(prefix).is_file():
        return prefix
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise AzuriteUnavailable("node and npm are needed for Azurite (apt-get install nodejs npm)")
    prefix.parent.mkdir(parents=True, exist_ok=True)
    with open(prefix.parent / f"{prefix.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs at once: one installs, one waits
        if stamp.is_file() and stamp.read_text() == PACKAGE and blob_main(prefix).is_file():
            return prefix
        shutil.rmtree(prefix, ignore_errors=True)  # a half-made install from an interrupted run
        prefix.mkdir(parents=True)
        cmd = [npm, "install", "--no-audit", "--no-fund", "--prefix", str(prefix), PACKAGE]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if done.returncode != 0 or not blob_main(prefix).is_file():
            tail = (done.stderr or done.stdout)[-2000:]
            raise AzuriteUnavailable(f"{' '.join(cmd[:3])} {PACKAGE} failed:\n{tail}")
        stamp.write_text(PACKAGE)
    return prefix


def start_azurite(prefix: Path, timeout: float = 60) -> Server:
    """Start the Blob service alone; `url` is the account endpoint (…/devstoreaccount1)."""
    node = shutil.which("node")
    if node is None:
        raise AzuriteUnavailable("node not found")
    workdir = Path(tempfile.mkdtemp(prefix="po-azurite-"))
    port = free_port()
    log_path = workdir / "azurite.log"
    cmd = [node, str(blob_main(prefix)), "--blobHost", "127.0.0.1", "--blobPort", str(port)]
    # --disableTelemetry: Azurite phones home by default and nothing may leave 127.0.0.1;
    # --location: a temp dir removed by stop(); --skipApiVersionCheck: the
    # Python SDK may send an API version newer than this Azurite knows; --loose: ignore
    # headers Azurite does not implement instead of failing the request.
    cmd += ["--location", str(workdir / "data"), "--silent"]
    cmd += ["--skipApiVersionCheck", "--loose", "--disableProductStyleUrl", "--disableTelemetry"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True
        )
    server = Server("azurite", proc, f"http://127.0.0.1:{port}/{ACCOUNT}", workdir, log_path)

    def up() -> bool:
        if proc.poll() is not None:
            raise AzuriteUnavailable(f"azurite exited:\n{server.log()}")
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True

    try:
        wait_for(up, timeout, "azurite")
    except Exception as exc:
        log_tail = server.log()
        server.stop()
        raise AzuriteUnavailable(f"{exc}\n{log_tail}") from None
    return server


def connection_string(server: Server, key: str = ACCOUNT_KEY) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={key};"
        f"BlobEndpoint={server.url};"
    )


# One Azurite per test process, shared by every module that imports the fixture; a failure to
# start is remembered, not retried.
_shared: dict[str, object] = {}


@pytest.fixture(scope="session")
def azurite_blob() -> Iterator[Server]:
    """A running Azurite Blob service for the session."""
    owner = not _shared
    if owner:
        try:
            _shared["server"] = start_azurite(ensure_installed())
        except Exception as exc:  # any reason at all: report it, never hide it
            _shared["error"] = f"Azurite cannot start: {exc}"
    if "error" in _shared:
        reason = str(_shared["error"])
        if in_ci():
            pytest.fail(reason + " (CI=true: the Azure tests must run)", pytrace=False)
        pytest.skip(reason)
    server = _shared["server"]
    assert isinstance(server, Server)
    yield server
    if owner:
        server.stop()
        _shared.clear()


def main(argv: list[str]) -> int:
    if argv[1:] != ["install"]:
        print("usage: python -m tests.support.azurite install", file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        prefix = ensure_installed()
    except AzuriteUnavailable as exc:
        print(f"azurite: NOT installed: {exc}", file=sys.stderr)
        # Outside CI the tests then skip with this reason; in CI this fails the build.
        return 1 if in_ci() else 0
    print(f"azurite: {PACKAGE} ready in {prefix} ({time.monotonic() - started:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
