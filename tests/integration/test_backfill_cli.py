"""`pipeline-ops backfill` as a subprocess against the real worker: one run per date,
and after an interrupt (SIGINT mid-way) a re-run skips the dates that completed and
re-attaches to the ones still running, so no date runs twice."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import date, timedelta

from pipeline.storage.records import RunRecord
from tests.integration.conftest import Stack, write_pipeline
from tests.support.servers import ROOT

PIPELINE_OPS = os.path.join(os.path.dirname(sys.executable), "pipeline-ops")
SLOW_DAY = """\
pipeline_id: test_backfill_day
name: One second per day
provider: backfill
domain: test
steps:
  - step_id: work
    ps_type: generic.noop
    config: {sleep_seconds: 1}
"""
ORG = "backfiller"
FIRST, LAST = date(2026, 3, 1), date(2026, 3, 6)
ARGS = [
    "backfill",
    "backfill/test/slow_day",
    "--org",
    ORG,
    "--start-date",
    FIRST.isoformat(),
    "--end-date",
    LAST.isoformat(),
    "--concurrency",
    "2",
    "--poll",
    "0.2",
]


def backfill(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PIPELINE_OPS, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def runs(stack: Stack) -> list[RunRecord]:
    return stack.services.store.list_runs(ORG, limit=100)


def active(stack: Stack) -> dict[str, date]:
    return {
        r.run_id: r.start_date
        for r in runs(stack)
        if r.status not in ("completed", "failed", "cancelled")
    }


def completed(stack: Stack) -> set[date]:
    return {r.start_date for r in runs(stack) if r.status == "completed"}


def test_backfill_runs_each_date_once_and_resumes_after_an_interrupt(sqlite_stack: Stack) -> None:
    stack = sqlite_stack
    write_pipeline(stack, "backfill/test/slow_day", SLOW_DAY)
    stack.services.orgs.create(ORG)
    env = {**os.environ, **stack.env}

    first = subprocess.Popen(
        [PIPELINE_OPS, *ARGS],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    # Interrupt once two dates completed and the next ones are in flight.
    while not (len(completed(stack)) >= 2 and active(stack)) and time.monotonic() < deadline:
        assert first.poll() is None, first.communicate()
        time.sleep(0.05)
    in_flight = active(stack)
    assert in_flight
    first.send_signal(signal.SIGINT)  # an operator's Ctrl-C, mid-way
    out, err = first.communicate(timeout=30)
    assert first.returncode == 130, (out, err)
    assert "run the same command again to resume" in err
    assert "running" in out and "remaining" in out  # progress was shown
    done_before = completed(stack)
    assert 2 <= len(done_before) < 6
    started_before = {r.run_id for r in runs(stack)}

    second = backfill(env, *ARGS)

    assert second.returncode == 0, (second.stdout, second.stderr)
    # The dates done before the interrupt (and any in flight that finished since) are skipped.
    skipped = re.search(r"(\d+) date\(s\) already completed: skipped", second.stdout)
    assert skipped and int(skipped.group(1)) >= len(done_before), second.stdout
    for day in done_before:
        assert f"{day} started" not in second.stdout
    assert "finished: done 6/6  running 0  failed 0  remaining 0" in second.stdout
    every = runs(stack)
    per_date = Counter(r.start_date for r in every)
    days = [FIRST + timedelta(days=n) for n in range(6)]
    assert per_date == Counter(days)  # exactly one run per date, across both invocations
    assert {r.status for r in every} == {"completed"}
    assert {r.trigger for r in every} == {"backfill"}
    # The runs the interrupted invocation left in flight were re-attached (or found
    # completed), never replaced: they are the ones that finished those dates.
    assert started_before <= {r.run_id for r in every}
    for run_id, day in in_flight.items():
        assert (
            f"{day} already running: run {run_id}" in second.stdout
            or day in done_before
            or (f"{day} started" not in second.stdout)
        )

    # --force runs completed dates again: one new run each, nothing else touched.
    forced_args = [*ARGS[:6], "--to", (FIRST + timedelta(days=1)).isoformat(), *ARGS[8:]]
    forced = backfill(env, *forced_args, "--force")
    assert forced.returncode == 0, (forced.stdout, forced.stderr)
    assert "already completed" not in forced.stdout
    assert f"{FIRST} started" in forced.stdout
    assert "finished: done 2/2  running 0  failed 0  remaining 0" in forced.stdout
    again = Counter(r.start_date for r in runs(stack))
    assert again == Counter(days) + Counter(days[:2])
