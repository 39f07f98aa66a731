"""Cancel, duplicate delivery and a killed worker process, against a real worker."""

from __future__ import annotations

import os
import signal
import time
from datetime import date

import duckdb

from pipeline.runs.service import RunRequest
from tests.integration.conftest import Stack, wait_for_attempt


def start(stack: Stack, org: str) -> str:
    if stack.services.store.get_org(org) is None:
        stack.services.orgs.create(org)
    req = RunRequest(
        org, "resilience", "steps", "slow_then_load", date(2026, 1, 1), date(2026, 1, 2)
    )
    return stack.services.runs.start(req).run_id


def count_rows(stack: Stack, table: str, run_id: str | None = None) -> int:
    path = stack.settings.warehouse_url.split("///", 1)[1]
    con = duckdb.connect(path, read_only=True)
    try:
        sql = f"SELECT COUNT(*) FROM {table}"
        params: list[str] = []
        if run_id:
            sql += " WHERE x_run_id = ?"
            params.append(run_id)
        return int(con.execute(sql, params).fetchone()[0])
    finally:
        con.close()


def test_cancel_stops_the_steps_that_have_not_started(sqlite_stack: Stack) -> None:
    run_id = start(sqlite_stack, "cancel_org")
    wait_for_attempt(sqlite_stack, run_id, "slow")
    cancelled = sqlite_stack.services.runs.cancel("cancel_org", run_id)
    # The slow step is executing: the run is cancelling until that step has stopped.
    assert cancelled.status == "cancelling"
    assert sqlite_stack.wait(run_id, timeout=30).status == "cancelled"
    time.sleep(4.5)  # `load` must never run
    run = sqlite_stack.services.store.get_run(run_id)
    assert run.status == "cancelled"
    attempts = sqlite_stack.services.store.step_attempts(run_id)
    assert [(a.step_id, a.status) for a in attempts] == [("slow", "cancelled")]
    transitions = [t.to_status for t in sqlite_stack.services.store.transitions(run_id)]
    assert transitions[-2:] == ["cancelling", "cancelled"] and "completed" not in transitions


def test_a_step_delivered_twice_executes_once(sqlite_stack: Stack) -> None:
    from tasks.steps import run_step

    run_id = start(sqlite_stack, "dup_org")
    wait_for_attempt(sqlite_stack, run_id, "slow")
    # A second copy of the running step's message, as a broker redelivery would send.
    run_step.apply_async((run_id, "slow"), task_id=f"{run_id}:slow:duplicate")
    run = sqlite_stack.wait(run_id)
    assert run.status == "completed", run.error_message
    # And a late duplicate of a completed step.
    late = run_step.apply_async((run_id, "load"), task_id=f"{run_id}:load:late").get(timeout=30)
    assert late["status"] == "skipped"

    attempts = sqlite_stack.services.store.step_attempts(run_id)
    assert [(a.step_id, a.attempt, a.status) for a in attempts] == [
        ("slow", 1, "completed"),
        ("load", 1, "completed"),
    ]
    started = [
        line
        for line in sqlite_stack.services.store.lines(run_id)
        if line.message.startswith("attempt 1 started")
    ]
    assert [line.step_id for line in started] == ["slow", "load"]
    assert count_rows(sqlite_stack, "dup_org_dev.resilience_usage") == 10


def test_a_killed_worker_process_is_replaced_and_the_run_completes(sqlite_stack: Stack) -> None:
    run_id = start(sqlite_stack, "kill_org")
    attempt = wait_for_attempt(sqlite_stack, run_id, "slow")
    pid = int(attempt.worker.rsplit(":", 1)[1])
    os.kill(pid, signal.SIGKILL)
    run = sqlite_stack.wait(run_id, timeout=60)
    assert run.status == "completed", run.error_message
    attempts = sqlite_stack.services.store.step_attempts(run_id)
    slow = [a for a in attempts if a.step_id == "slow"]
    # The redelivered message is the same attempt, restarted by another process.
    assert [(a.attempt, a.status) for a in slow] == [(1, "completed")]
    assert int(slow[0].worker.rsplit(":", 1)[1]) != pid
    assert count_rows(sqlite_stack, "kill_org_dev.resilience_usage") == 10
