"""Faults on a real worker: a SIGKILLed worker process, and a provider that flaps.

The killed worker's task is redelivered (acks_late + reject_on_worker_lost), the run
completes without duplicate rows, and its quota slot is released exactly once. A provider
alternating 500 and 200 is absorbed by the retry budget.
"""

from __future__ import annotations

import json
import os
import signal
from datetime import date

from pipeline.runs.service import RunRequest
from tests.integration.conftest import (
    ScriptedHTTPServer,
    Stack,
    settled_usage,
    wait_for_attempt,
    write_pipeline,
)
from tests.integration.test_resilience import count_rows, start


def concurrent_running(stack: Stack, org: str) -> int:
    return int(stack.services.gate.usage(org)["usage"]["concurrent_running"])


def settled_running(stack: Stack, org: str) -> int:
    return int(settled_usage(stack.services, org)["usage"]["concurrent_running"])


def test_sigkill_mid_step_redelivers_completes_and_releases_the_slot(
    sqlite_stack: Stack,
) -> None:
    run_id = start(sqlite_stack, "fault_kill")
    attempt = wait_for_attempt(sqlite_stack, run_id, "slow")
    assert concurrent_running(sqlite_stack, "fault_kill") == 1
    os.kill(int(attempt.worker.rsplit(":", 1)[1]), signal.SIGKILL)

    run = sqlite_stack.wait(run_id, timeout=60)
    assert run.status == "completed", run.error_message
    steps = [
        (a.step_id, a.attempt, a.status) for a in sqlite_stack.services.store.step_attempts(run_id)
    ]
    assert steps == [("slow", 1, "completed"), ("load", 1, "completed")]
    assert count_rows(sqlite_stack, "fault_kill_dev.resilience_usage") == 10
    assert settled_running(sqlite_stack, "fault_kill") == 0
    # Released exactly once: a second release of the same run changes nothing.
    assert sqlite_stack.services.gate.release("fault_kill", run_id, succeeded=True) is False
    assert concurrent_running(sqlite_stack, "fault_kill") == 0


FLAPPING = """
pipeline_id: test_flapping
name: Two fetches from a provider that alternates 500 and 200
provider: flaky
domain: http
steps:
  - step_id: first
    ps_type: generic.http_extract
    config: {{url: "{url}/a", destination_table: flap_a, date_column: day}}
    retry: {{max_attempts: 3, backoff_seconds: 0.3}}
  - step_id: second
    ps_type: generic.http_extract
    depends_on: [first]
    config: {{url: "{url}/b", destination_table: flap_b, date_column: day}}
    retry: {{max_attempts: 3, backoff_seconds: 0.3}}
"""


def test_a_flapping_provider_completes_within_the_retry_budget(
    sqlite_stack: Stack, http_server: ScriptedHTTPServer
) -> None:
    org = "fault_flap"
    if sqlite_stack.services.store.get_org(org) is None:
        sqlite_stack.services.orgs.create(org)
    write_pipeline(sqlite_stack, "flaky/http/flapping", FLAPPING.format(url=http_server.url))
    ok = (200, {}, json.dumps([{"day": "2026-01-01", "value": 1}]).encode())
    down = (500, {}, b"{}")
    http_server.script(down, ok, down, ok)

    req = RunRequest(org, "flaky", "http", "flapping", date(2026, 1, 1), date(2026, 1, 1))
    run = sqlite_stack.wait(sqlite_stack.services.runs.start(req).run_id)
    assert run.status == "completed", run.error_message
    attempts = [
        (a.step_id, a.attempt, a.status)
        for a in sqlite_stack.services.store.step_attempts(run.run_id)
    ]
    assert attempts == [
        ("first", 1, "retrying"),
        ("first", 2, "completed"),
        ("second", 1, "retrying"),
        ("second", 2, "completed"),
    ]
    assert len(http_server.requests) == 4
    assert count_rows(sqlite_stack, "fault_flap_dev.flap_a") == 1
    assert count_rows(sqlite_stack, "fault_flap_dev.flap_b") == 1
    assert settled_running(sqlite_stack, org) == 0
