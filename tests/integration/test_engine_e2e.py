"""The engine end to end: API -> Celery worker subprocess -> DuckDB, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date, datetime

import duckdb
import pyarrow as pa
import pytest

from pipeline.runs.service import RunRequest
from tests.integration.conftest import ScriptedHTTPServer, Stack, write_pipeline
from warehouse.base import LINEAGE_FIELDS


def demo_request(org: str, start: str = "2026-01-01", end: str = "2026-01-03") -> RunRequest:
    return RunRequest(
        org_slug=org,
        provider="demo",
        domain="sample",
        pipeline="genai_usage",
        start_date=date.fromisoformat(start),
        end_date=date.fromisoformat(end),
    )


def ensure_org(stack: Stack, slug: str) -> str:
    if stack.services.store.get_org(slug) is None:
        return stack.services.orgs.create(slug)
    return ""


def table_rows(stack: Stack, table: str, org: str | None = None) -> pa.Table:
    path = stack.settings.warehouse_url.split("///", 1)[1]
    con = duckdb.connect(path, read_only=True)
    try:
        sql = f"SELECT * FROM {table}"
        if org:
            sql += f" WHERE x_org_slug = '{org}'"
        return con.sql(sql + " ORDER BY ALL").to_arrow_table()
    finally:
        con.close()


@pytest.fixture(scope="module")
def client(stack: Stack):  # type: ignore[no-untyped-def]
    from app import create_app

    app = create_app(stack.settings, stack.services)
    return app.test_client()


def test_demo_pipeline_through_api_and_worker(stack: Stack, client) -> None:  # type: ignore[no-untyped-def]
    org = "acme"
    key = stack.services.orgs.create(org)
    resp = client.post(
        f"/pipelines/run/{org}/demo/sample/genai_usage",
        json={"start_date": "2026-01-01", "end_date": "2026-01-03"},
        headers={"X-API-Key": key},
    )
    assert resp.status_code == 202, resp.get_json()
    run_id = resp.get_json()["run_id"]
    run = stack.wait(run_id)
    assert run.status == "completed", run.error_message

    status = client.get(f"/pipelines/status/{org}/{run_id}", headers={"X-API-Key": key}).get_json()
    steps = {s["step_id"]: s for s in status["steps"]}
    assert set(steps) == {"extract_usage", "load_prices", "daily_cost"}
    assert all(s["status"] == "completed" and s["attempts"] == 1 for s in steps.values())
    # 3 days x 5 models of usage; 5 prices.
    assert steps["extract_usage"]["rows_written"] == 15
    assert steps["load_prices"]["rows_written"] == 5

    transitions = client.get(
        f"/pipelines/logs/{org}/{run_id}/transitions", headers={"X-API-Key": key}
    ).get_json()["transitions"]
    assert [t["to_status"] for t in transitions] == [
        "pending",
        "validating",
        "queued",
        "running",
        "completed",
    ]
    download = client.get(f"/pipelines/logs/{org}/{run_id}/download", headers={"X-API-Key": key})
    records = [json.loads(line) for line in download.get_data(as_text=True).splitlines()]
    assert records[0]["type"] == "run" and records[0]["run_id"] == run_id
    assert {r["type"] for r in records} >= {"run", "step", "transition", "line"}

    cost = table_rows(stack, f"{org}_dev.demo_daily_cost", org)
    assert cost.num_rows == 15
    lineage = {f.name: f.type for f in LINEAGE_FIELDS}
    schema = {f.name: f.type for f in cost.schema}
    assert set(lineage) <= set(schema)
    assert schema["x_pipeline_run_date"] == pa.date32()
    assert schema["x_ingestion_date"] == pa.date32()
    assert pa.types.is_timestamp(schema["x_ingested_at"])
    assert set(cost.column("x_run_id").to_pylist()) == {run_id}
    assert set(cost.column("x_pipeline_id").to_pylist()) == {"demo_genai_usage"}
    # Hand check one row: cost = input/1e6 * in_price + output/1e6 * out_price.
    usage = table_rows(stack, f"{org}_dev.demo_usage_raw", org).to_pylist()
    first = next(
        r for r in usage if r["model"] == "gpt-4o-mini" and r["usage_date"] == date(2026, 1, 1)
    )
    expected = first["input_tokens"] / 1e6 * 0.15 + first["output_tokens"] / 1e6 * 0.60
    got = next(
        r["cost_usd"]
        for r in cost.to_pylist()
        if r["model"] == "gpt-4o-mini" and r["usage_date"] == date(2026, 1, 1)
    )
    assert got == pytest.approx(expected)


def _content(table: pa.Table) -> list[dict]:
    rows = table.drop_columns(["x_run_id", "x_ingested_at", "x_ingestion_date"]).to_pylist()
    return sorted(rows, key=lambda r: json.dumps(r, default=str, sort_keys=True))


def test_same_key_twice_leaves_the_same_rows(stack: Stack) -> None:
    svc = stack.services
    for org in ("idem_a", "idem_b"):
        ensure_org(stack, org)
    # Other org, and other dates of the same org, must stay untouched.
    other_org = stack.wait(svc.runs.start(demo_request("idem_b")).run_id)
    other_dates = stack.wait(
        svc.runs.start(demo_request("idem_a", "2026-01-05", "2026-01-06")).run_id
    )
    assert other_org.status == other_dates.status == "completed"
    b_before = _content(table_rows(stack, "idem_b_dev.demo_daily_cost"))

    first = stack.wait(svc.runs.start(demo_request("idem_a")).run_id)
    assert first.status == "completed"
    after_first = table_rows(stack, "idem_a_dev.demo_daily_cost")
    second = stack.wait(svc.runs.start(demo_request("idem_a")).run_id)
    assert second.status == "completed"
    after_second = table_rows(stack, "idem_a_dev.demo_daily_cost")

    assert after_first.num_rows == after_second.num_rows == 15 + 10
    assert _content(after_first) == _content(after_second)
    jan_5_6 = [r for r in after_second.to_pylist() if r["usage_date"] >= date(2026, 1, 5)]
    assert {r["x_run_id"] for r in jan_5_6} == {other_dates.run_id}
    assert _content(table_rows(stack, "idem_b_dev.demo_daily_cost")) == b_before
    raw = table_rows(stack, "idem_a_dev.demo_usage_raw")
    assert raw.num_rows == 25


def test_independent_steps_run_at_the_same_time(stack: Stack) -> None:
    ensure_org(stack, "par")
    run = stack.wait(
        stack.services.runs.start(
            RunRequest("par", "parallel", "sleep", "fan_in", date(2026, 1, 1), date(2026, 1, 1))
        ).run_id
    )
    assert run.status == "completed", run.error_message
    attempts = {a.step_id: a for a in stack.services.store.step_attempts(run.run_id)}
    left, right, join = attempts["left"], attempts["right"], attempts["join"]
    # Overlap: each started before the other ended.
    assert left.started_at < right.ended_at and right.started_at < left.ended_at
    # The fan-in step waited for both.
    assert join.started_at >= max(left.ended_at, right.ended_at)


FLAKY = """
pipeline_id: test_flaky_http
name: Fetch rows over HTTP from a flaky endpoint
provider: flaky
domain: http
steps:
  - step_id: fetch
    ps_type: generic.http_extract
    config: {{url: "{url}/rows", destination_table: flaky_rows, date_column: day}}
    timeout_seconds: 30
    retry: {{max_attempts: 3, backoff_seconds: 0.5}}
"""


def test_transient_errors_retry_then_succeed(stack: Stack, http_server: ScriptedHTTPServer) -> None:
    ensure_org(stack, "flaky")
    write_pipeline(stack, "flaky/http/rows", FLAKY.format(url=http_server.url))
    body = json.dumps([{"day": "2026-01-01", "value": 1}, {"day": "2026-01-01", "value": 2}])
    http_server.script(
        (500, {}, b"{}"), (503, {"Retry-After": "1"}, b"{}"), (200, {}, body.encode())
    )
    req = RunRequest("flaky", "flaky", "http", "rows", date(2026, 1, 1), date(2026, 1, 1))
    run = stack.wait(stack.services.runs.start(req).run_id)
    assert run.status == "completed", run.error_message
    attempts = [a for a in stack.services.store.step_attempts(run.run_id)]
    assert [(a.attempt, a.status) for a in attempts] == [
        (1, "retrying"),
        (2, "retrying"),
        (3, "completed"),
    ]
    assert "HTTP 500" in attempts[0].error and "HTTP 503" in attempts[1].error
    # Backoff happened between attempts (0.5 s, then max(1 s, Retry-After 1 s)).
    assert (attempts[1].started_at - attempts[0].ended_at).total_seconds() >= 0.5
    assert (attempts[2].started_at - attempts[1].ended_at).total_seconds() >= 1.0
    assert table_rows(stack, "flaky_dev.flaky_rows").num_rows == 2


def test_unauthorized_provider_fails_at_once(stack: Stack, http_server: ScriptedHTTPServer) -> None:
    ensure_org(stack, "denied")
    write_pipeline(
        stack,
        "flaky/http/denied",
        FLAKY.format(url=http_server.url).replace("test_flaky_http", "test_denied_http"),
    )
    http_server.script((401, {}, b'{"error": "bad key"}'))
    req = RunRequest("denied", "flaky", "http", "denied", date(2026, 1, 1), date(2026, 1, 1))
    run = stack.wait(stack.services.runs.start(req).run_id)
    assert run.status == "failed"
    assert "HTTP 401" in run.error_message and "credentials rejected" in run.error_message
    attempts = stack.services.store.step_attempts(run.run_id)
    assert [(a.attempt, a.status) for a in attempts] == [(1, "failed")]
    assert len(http_server.requests) == 1


def test_step_over_its_timeout_is_stopped_by_the_soft_limit(stack: Stack) -> None:
    ensure_org(stack, "slow")
    req = RunRequest("slow", "timeouts", "sleep", "too_slow", date(2026, 1, 1), date(2026, 1, 1))
    started = datetime.now().timestamp()
    run = stack.wait(stack.services.runs.start(req).run_id, timeout=60)
    assert run.status == "failed"
    assert "exceeded timeout_seconds=2" in run.error_message
    assert "soft time limit" in run.error_message
    attempts = stack.services.store.step_attempts(run.run_id)
    assert [(a.step_id, a.status) for a in attempts] == [("slow", "failed")]
    # Stopped near 2 s, not after the 20 s sleep.
    assert datetime.now().timestamp() - started < 15
