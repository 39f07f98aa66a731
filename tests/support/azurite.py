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

import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import Server, free_port, wait_for
from tests.support.tools import CACHE_DIR, install_main, install_once, shared_server

PACKAGE = "azurite@3.35.0"
PREFIX = CACHE_DIR / "azurite"

# The well-known development account every Azurite instance accepts (published by Microsoft
# in the Azurite README); it is not a secret.
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


class AzuriteUnavailable(RuntimeError):
    """Azurite could not be installed or started here."""


def blob_main(prefix: Path = PREFIX) -> Path:
    return prefix / "node_modules/azurite/dist/src/blob/main.js"


def ensure_installed(prefix: Path = PREFIX) -> Path:
    """`npm install` Azurite once (tens of seconds); later calls return at once."""
    npm = shutil.which("npm")

    def install() -> None:
        if npm is None or shutil.which("node") is None:
            raise AzuriteUnavailable(
                "node and npm are needed for Azurite (apt-get install nodejs npm)"
            )
        prefix.mkdir(parents=True)
        cmd = [npm, "install", "--no-audit", "--no-fund", "--prefix", str(prefix), PACKAGE]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if done.returncode != 0 or not blob_main(prefix).is_file():
            tail = (done.stderr or done.stdout)[-2000:]
            raise AzuriteUnavailable(f"{' '.join(cmd[:3])} {PACKAGE} failed:\n{tail}")

    return install_once(prefix, PACKAGE, blob_main(prefix).is_file, install)


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


# One Azurite per test process, shared by every module that imports the fixture.
_shared: dict[str, object] = {}


@pytest.fixture(scope="session")
def azurite_blob() -> Iterator[Server]:
    """A running Azurite Blob service for the session."""
    yield from shared_server(_shared, "Azurite", lambda: start_azurite(ensure_installed()))


if __name__ == "__main__":
    sys.exit(
        install_main(
            sys.argv, "tests.support.azurite", "azurite", ensure_installed, AzuriteUnavailable
        )
    )
