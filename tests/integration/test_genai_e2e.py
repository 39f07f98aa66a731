"""OpenAI, then consolidate, through the API and a real Celery worker into DuckDB.

The provider is a local server speaking the documented admin API; the run's credential is
stored in the vault with a `base_url` override pointing at it, exactly as an operator would
point a credential at a proxy.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date

import pytest

from pipeline.runs.service import RunRequest
from tests.integration.conftest import ROOT, Stack, write_pipeline
from tests.integration.test_engine_e2e import ensure_org, table_rows
from tests.support.provider_api import (
    RAW_COLUMNS,
    ProviderAPIServer,
    expected_openai_rows,
    serve_anthropic,
    serve_openai,
)

DAYS = [date(2026, 1, 1), date(2026, 1, 2)]
BODY = {"start_date": "2026-01-01", "end_date": "2026-01-02"}
SECRET = "sk-admin-e2e-0123456789abcdef"


@pytest.fixture
def api() -> Iterator[ProviderAPIServer]:
    server = ProviderAPIServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def client(sqlite_stack: Stack):  # type: ignore[no-untyped-def]
    from app import create_app

    return create_app(sqlite_stack.settings, sqlite_stack.services).test_client()


def store_credential(stack: Stack, org: str, provider: str, cid: str, url: str) -> None:
    secret = {"admin_key": SECRET, "base_url": url}
    stack.services.credentials.add(org, provider, f"{provider} admin", secret, credential_id=cid)


def focus_totals(stack: Stack, org: str) -> list[tuple]:
    rows = table_rows(stack, f"{org}_dev.cost_data_standard_1_3", org).to_pylist()
    by: dict[str, list[float]] = {}
    for r in rows:
        acc = by.setdefault(r["x_provider"], [0, 0.0, 0.0])
        acc[0] += 1
        acc[1] += r["BilledCost"]
        acc[2] += r["ListCost"]
    return sorted((k, n, round(b, 9), round(li, 9)) for k, (n, b, li) in by.items())


def test_openai_then_consolidate_through_the_api_and_a_worker(
    sqlite_stack: Stack,
    client,
    api: ProviderAPIServer,  # type: ignore[no-untyped-def]
) -> None:
    stack, org = sqlite_stack, "genai_e2e"
    key = stack.services.orgs.create(org)
    store_credential(stack, org, "openai", "openai_admin", api.url)
    serve_openai(api, DAYS)
    headers = {"X-API-Key": key}

    resp = client.post(
        f"/pipelines/run/{org}/genai/payg/openai",
        json={**BODY, "credential_id": "openai_admin"},
        headers=headers,
    )
    assert resp.status_code == 202, resp.get_json()
    run = stack.wait(resp.get_json()["run_id"])
    assert run.status == "completed", run.error_message
    steps = {s.step_id: s for s in stack.services.store.step_attempts(run.run_id)}
    assert set(steps) == {"extract", "calculate", "unify"}
    assert steps["extract"].rows_written == 6

    raw = table_rows(stack, f"{org}_dev.genai_payg_usage_raw", org)
    got = sorted(
        (tuple(r[c.strip()] for c in RAW_COLUMNS.split(",")) for r in raw.to_pylist()), key=repr
    )
    assert got == expected_openai_rows(api)
    costs = table_rows(stack, f"{org}_dev.genai_payg_costs", org).to_pylist()
    assert {r["price_status"] for r in costs} == {"priced"}
    assert sum(r["provider_reported_cost"] or 0 for r in costs) == pytest.approx(0.09)
    focus = table_rows(stack, f"{org}_dev.cost_data_standard_1_3", org).to_pylist()
    assert focus and {r["x_provider"] for r in focus} == {"openai"}
    assert {r["ServiceSubcategory"] for r in focus} == {"Generative AI"}
    assert sum(r["ListCost"] for r in focus) == pytest.approx(sum(r["list_cost"] for r in costs))
    before = focus_totals(stack, org)

    # Consolidate rebuilds the same slice from the cost tables: same rows, same totals.
    resp = client.post(
        f"/pipelines/run/{org}/genai/unified/consolidate", json=BODY, headers=headers
    )
    assert resp.status_code == 202, resp.get_json()
    consolidated = stack.wait(resp.get_json()["run_id"])
    assert consolidated.status == "completed", consolidated.error_message
    assert focus_totals(stack, org) == before
    rebuilt = table_rows(stack, f"{org}_dev.cost_data_standard_1_3", org).to_pylist()
    assert {r["x_run_id"] for r in rebuilt} == {consolidated.run_id}

    # The override is in the run log; the admin key is nowhere in it.
    log = client.get(f"/pipelines/logs/{org}/{run.run_id}/download", headers=headers)
    text = log.get_data(as_text=True)
    assert "API base URL overridden by the credential's base_url" in text
    assert SECRET not in text


def fast_copy(name: str, pipeline_id: str) -> str:
    """A repository pipeline with short retry backoffs, so retries take seconds."""
    text = (ROOT / "configs" / "genai" / "payg" / f"{name}.yml").read_text()
    text = text.replace("backoff_seconds: 30", "backoff_seconds: 0.5")
    return text.replace(f"pipeline_id: genai_{name}_payg", f"pipeline_id: {pipeline_id}")


def test_429_then_500_are_retried_then_the_step_succeeds(
    sqlite_stack: Stack, api: ProviderAPIServer
) -> None:
    stack, org = sqlite_stack, "genai_retry"
    ensure_org(stack, org)
    store_credential(stack, org, "openai", "openai_admin", api.url)
    write_pipeline(stack, "genai/payg/openai_fast", fast_copy("openai", "genai_openai_fast"))
    serve_openai(api, DAYS)
    api.fail(429, {"Retry-After": "1"})
    api.fail(500)
    req = RunRequest(org, "genai", "payg", "openai_fast", DAYS[0], DAYS[1], "openai_admin")
    run = stack.wait(stack.services.runs.start(req).run_id)
    assert run.status == "completed", run.error_message
    extract = [a for a in stack.services.store.step_attempts(run.run_id) if a.step_id == "extract"]
    assert [(a.attempt, a.status) for a in extract] == [
        (1, "retrying"),
        (2, "retrying"),
        (3, "completed"),
    ]
    assert "HTTP 429" in extract[0].error and "HTTP 500" in extract[1].error
    # Retry-After: 1 was honoured (the configured backoff is only 0.5 s).
    assert (extract[1].started_at - extract[0].ended_at).total_seconds() >= 1.0
    raw = table_rows(stack, f"{org}_dev.genai_payg_usage_raw", org)
    assert raw.num_rows == len(expected_openai_rows(api))


def test_401_fails_the_step_with_a_clear_error(sqlite_stack: Stack, api: ProviderAPIServer) -> None:
    stack, org = sqlite_stack, "genai_denied"
    ensure_org(stack, org)
    store_credential(stack, org, "anthropic", "anthropic_admin", api.url)
    write_pipeline(
        stack, "genai/payg/anthropic_fast", fast_copy("anthropic", "genai_anthropic_fast")
    )
    serve_anthropic(api, DAYS)
    api.fail(401)
    req = RunRequest(org, "genai", "payg", "anthropic_fast", DAYS[0], DAYS[1], "anthropic_admin")
    run = stack.wait(stack.services.runs.start(req).run_id)
    assert run.status == "failed"
    assert "HTTP 401" in run.error_message and "credentials rejected" in run.error_message
    assert "Anthropic needs an Admin API key" in run.error_message
    attempts = stack.services.store.step_attempts(run.run_id)
    assert [(a.step_id, a.attempt, a.status) for a in attempts] == [("extract", 1, "failed")]
    assert len(api.requests) == 1
    assert SECRET not in json.dumps(run, default=str)
