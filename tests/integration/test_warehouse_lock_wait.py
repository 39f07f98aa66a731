"""A DuckDB reader in another process holding the warehouse file stalls a run's writes: the
run log says so (who holds the lock, since when) and /metrics counts the wait.

The reader is a real `duckdb.connect(path, read_only=True)` in a separate Python process,
as a user's notebook or duckdb shell would hold it; the run goes through a real worker.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date

import duckdb
import pytest

from app import create_app
from pipeline.runs.service import RunRequest
from tests.integration.conftest import Stack

ORG = "lockwait"
READER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print("holding", flush=True)
sys.stdin.readline()  # until the test says so
con.close()
"""


def metric(client, name: str) -> float:  # type: ignore[no-untyped-def]
    # A fresh page: the app keeps one for PIPELINE_OPS_METRICS_CACHE_SECONDS.
    client.application.extensions.pop("pipeline_ops.metrics_page", None)
    text = client.get("/metrics").get_data(as_text=True)
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


@pytest.fixture
def reader(sqlite_stack: Stack) -> Iterator[subprocess.Popen[str]]:
    path = sqlite_stack.settings.warehouse_url.removeprefix("duckdb://")
    duckdb.connect(path).close()  # a read-only connection needs the file to exist
    proc = subprocess.Popen(
        [sys.executable, "-c", READER, path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


def test_a_read_only_reader_stalls_writes_and_the_run_log_and_metrics_say_so(
    sqlite_stack: Stack, reader: subprocess.Popen[str]
) -> None:
    stack = sqlite_stack
    client = create_app(services=stack.services).test_client()
    waits_before = metric(client, "pipeline_ops_warehouse_lock_wait_seconds_count")
    stack.services.orgs.create(ORG)
    run = stack.services.runs.start(
        RunRequest(ORG, "demo", "sample", "genai_usage", date(2026, 1, 1), date(2026, 1, 7))
    )
    run_id = run.run_id

    waiting = _line(stack, run_id, "waiting for the DuckDB write lock")
    assert f"held by pid {reader.pid} " in waiting, waiting
    assert re.search(r"since \d\d:\d\d:\d\d UTC", waiting), waiting
    time.sleep(1.0)  # a measurable wait, then the reader lets go
    assert reader.stdin is not None
    reader.stdin.write("done\n")
    reader.stdin.flush()

    final = stack.wait(run_id, timeout=90)
    assert final.status == "completed", final
    got = _line(stack, run_id, "got it after waiting")
    waited = float(re.search(r"waiting ([\d.]+)s", got).group(1))  # type: ignore[union-attr]
    assert waited >= 1.0
    assert metric(client, "pipeline_ops_warehouse_lock_wait_seconds_count") >= waits_before + 1
    assert metric(client, "pipeline_ops_warehouse_lock_wait_seconds_sum") >= waited - 0.05


def _line(stack: Stack, run_id: str, text: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in stack.services.store.lines(run_id):
            if text in line.message:
                return str(line.message)
        time.sleep(0.1)
    lines = [line.message for line in stack.services.store.lines(run_id)]
    raise AssertionError(f"no run-log line with {text!r}: {lines}\n{stack.worker.log()}")
