"""The concurrent limit under a crowd, against real redis-server and SQLite / PostgreSQL:
200 reservations from threads, 200 from several processes, 100 parallel HTTP requests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import redis

from app import create_app
from pipeline_ops_core.errors import QuotaExceededError
from quota.gate import LedgerGate
from tests.integration.conftest import ROOT, Stack, settled_usage, write_pipeline
from tests.support.records import count_runs

HOLD = """
pipeline_id: quota_hold
name: Holds its slot for a few seconds
provider: quota
domain: slow
steps:
  - step_id: hold
    ps_type: generic.noop
    config: {sleep_seconds: 6}
    timeout_seconds: 60
"""


def gate_of(stack: Stack, org: str, concurrent: int = 5) -> LedgerGate:
    if stack.services.store.get_org(org) is None:
        stack.services.orgs.create(org)
    gate = stack.services.gate
    assert isinstance(gate, LedgerGate)
    gate.set_limits(org, concurrent=concurrent, daily=1000, monthly=10000)
    return gate


def assert_both_agree(stack: Stack, gate: LedgerGate, org: str, admitted: list[str]) -> None:
    usage = gate.usage(org)
    assert sorted(lease["run_id"] for lease in usage["usage"]["leases"]) == sorted(admitted)
    assert usage["usage"]["concurrent_running"] == len(admitted)
    assert sorted(usage["mirror"]["leases"]) == sorted(admitted)
    client = redis.Redis.from_url(stack.settings.redis_url)
    try:
        assert client.zcard(f"{gate.mirror.prefix}{{{org}}}:leases") == len(admitted)
    finally:
        client.close()


def test_200_threads_admit_exactly_the_concurrent_limit(stack: Stack) -> None:
    org = f"crowd_threads_{stack.kind}"
    gate = gate_of(stack, org)
    barrier = threading.Barrier(200)
    outcomes: dict[str, str] = {}

    def attempt(i: int) -> None:
        run_id = f"{org}-{i}"
        barrier.wait()
        try:
            gate.reserve(org, run_id)
            outcomes[run_id] = "admitted"
        except QuotaExceededError as exc:
            outcomes[run_id] = f"{exc.limit}:{exc.limit_value}:{exc.current}"

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert Counter(outcomes.values()) == {"admitted": 5, "concurrent:5:5": 195}
    assert_both_agree(stack, gate, org, [r for r, o in outcomes.items() if o == "admitted"])


def test_200_attempts_from_four_processes_admit_exactly_the_limit(stack: Stack) -> None:
    org = f"crowd_procs_{stack.kind}"
    gate = gate_of(stack, org)
    env = {**os.environ, **stack.env}
    racers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.integration.quota_racer", org, f"p{n}", "50"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    try:
        for racer in racers:
            assert racer.stdout is not None and racer.stdout.readline().strip() == "ready"
        for racer in racers:  # as close to "at once" as four processes get
            assert racer.stdin is not None
            racer.stdin.write("go\n")
            racer.stdin.flush()
        results: dict[str, str] = {}
        for racer in racers:
            out, err = racer.communicate(timeout=60)
            assert racer.returncode == 0, err
            results.update(json.loads(out.strip().splitlines()[-1]))
    finally:
        for racer in racers:
            if racer.poll() is None:
                racer.kill()

    assert len(results) == 200
    assert Counter(results.values()) == {"admitted": 5, "concurrent": 195}
    assert_both_agree(stack, gate, org, [r for r, o in results.items() if o == "admitted"])


def test_100_parallel_http_requests_get_exactly_5_accepted_and_95_refused(stack: Stack) -> None:
    org = f"crowd_http_{stack.kind}"
    key = stack.services.orgs.create(org)
    gate = gate_of(stack, org)
    write_pipeline(stack, "quota/slow/hold", HOLD)
    app = create_app(stack.settings, stack.services)
    barrier = threading.Barrier(100)

    def post(i: int) -> tuple[int, dict, str | None]:
        client = app.test_client()
        day = (date(2025, 1, 1) + timedelta(days=i)).isoformat()  # distinct idempotency keys
        barrier.wait()
        response = client.post(
            f"/pipelines/run/{org}/quota/slow/hold",
            json={"start_date": day},
            headers={"X-API-Key": key},
        )
        return response.status_code, response.get_json(), response.headers.get("Retry-After")

    with ThreadPoolExecutor(max_workers=100) as pool:
        replies = list(pool.map(post, range(100)))

    statuses = Counter(status for status, _, _ in replies)
    assert statuses == {202: 5, 429: 95}, [body for status, body, _ in replies if status >= 500]
    for status, body, retry_after in replies:
        if status == 429:
            assert body["code"] == "quota_exceeded"
            assert (body["limit"], body["limit_value"], body["current"]) == ("concurrent", 5, 5)
            assert body["detail"] == "concurrent quota exceeded: 5 of 5 used"
            assert retry_after is not None and 1 <= int(retry_after) <= 10
    accepted = [body["run_id"] for status, body, _ in replies if status == 202]
    assert count_runs(stack.services.store, org) == 5  # refused requests recorded nothing
    assert_both_agree(stack, gate, org, accepted)
    for run_id in accepted:  # hand the worker back to the next tests
        stack.services.runs.cancel(org, run_id)
    # A run whose step was executing is `cancelling` and keeps its slot until that step
    # has stopped; then every slot is free.
    for run_id in accepted:
        assert stack.wait(run_id, timeout=60).status == "cancelled"
    assert settled_usage(stack.services, org)["usage"]["concurrent_running"] == 0
