"""Test tools installed once into a cache outside the repo, and servers shared per session.

The BigQuery emulator (a Python venv) and Azurite (an npm install) follow the same rules:
install once under `~/.cache/pipeline-ops` (or `$PIPELINE_OPS_CACHE_DIR`) behind a lock and a
stamp, start one server per test process, and where either can't be had, skip with the
reason — except with CI=true, where a skip would let CI pass without the tests, so they fail.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.servers import Server

CACHE_DIR = Path(os.environ.get("PIPELINE_OPS_CACHE_DIR") or Path.home() / ".cache/pipeline-ops")
_STAMP = ".pipeline-ops-installed"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def install_once(
    target: Path, wanted: str, ready: Callable[[], bool], install: Callable[[], None]
) -> Path:
    """Run `install` into `target` unless the stamp says `wanted` is already there.

    Two test runs at once: one installs, the other waits on the lock and then finds it done.
    A half-made install from an interrupted run is removed first.
    """
    stamp = target / _STAMP

    def done() -> bool:
        return stamp.is_file() and stamp.read_text() == wanted and ready()

    if done():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done():
            return target
        shutil.rmtree(target, ignore_errors=True)
        install()
        stamp.write_text(wanted)
    return target


def shared_server(
    cache: dict[str, object], what: str, start: Callable[[], Server]
) -> Iterator[Server]:
    """The body of a session fixture: one server per process, a failed start remembered.

    Every test module that imports the fixture gets its own fixture definition; `cache` (a
    module-level dict of the tool's module) makes them share one server.
    """
    owner = not cache
    if owner:
        try:
            cache["server"] = start()
        except Exception as exc:  # any reason at all: report it, never hide it
            cache["error"] = f"{what} cannot start: {exc}"
    if "error" in cache:
        reason = str(cache["error"])
        if in_ci():
            pytest.fail(f"{reason} (CI=true: the {what} tests must run)", pytrace=False)
        pytest.skip(reason)
    server = cache["server"]
    assert isinstance(server, Server)
    yield server
    if owner:
        server.stop()
        cache.clear()


def install_main(
    argv: list[str], module: str, label: str, install: Callable[[], Path], unavailable: type
) -> int:
    """`python -m <module> install`, as the Makefile runs it before `make test`."""
    if argv[1:] != ["install"]:
        print(f"usage: python -m {module} install", file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        where = install()
    except unavailable as exc:
        print(f"{label}: NOT installed: {exc}", file=sys.stderr)
        # Outside CI the tests then skip with this reason; in CI this fails the build.
        return 1 if in_ci() else 0
    print(f"{label}: ready in {where} ({time.monotonic() - started:.1f}s)")
    return 0
