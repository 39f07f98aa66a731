"""End to end on both warehouses: the same pipeline gives the same totals on DuckDB and on
BigQuery (the emulator), run by the real run service and a real Celery worker.

Two pipelines: the demo pipeline (usage export and price list loaded in parallel, then the
sp_demo_daily_cost procedure), and the GenAI path — OpenAI Admin API sample served locally,
then consolidate — whose FOCUS totals must match to the cent.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from pipeline.bootstrap import Services
from pipeline.runs.service import RunRequest
from tests.integration.bigquery_emulator import PROJECT, bigquery_emulator  # noqa: F401
from tests.integration.conftest import make_stack
from tests.support.servers import Server
from warehouse import from_url

TOTALS = """
SELECT provider, model, COUNT(*) AS days, SUM(input_tokens) AS input_tokens,
       SUM(output_tokens) AS output_tokens, SUM(requests) AS requests,
       ROUND(SUM(cost_usd), 9) AS cost_usd
FROM `acme_dev.demo_daily_cost`
WHERE x_org_slug = @org
GROUP BY provider, model
ORDER BY provider, model
"""


def run_on_stack(
    tmp: Path,
    redis: Server,
    configs: Path,
    warehouse_url: str,
    requests: list[RunRequest],
    credentials: tuple[tuple[str, dict[str, str], str], ...] = (),
) -> None:
    """Run `requests` in order on a stack of their own (SQLite metadata DB, a worker)."""

    def setup(services: Services) -> None:
        services.orgs.create("acme")
        for provider, secret, credential_id in credentials:
            services.credentials.add(
                "acme", provider, f"{provider} admin", secret, credential_id=credential_id
            )

    # One worker at a time: workers share the broker, so each stack's is stopped after.
    stack, stop = make_stack(
        "sqlite", tmp, redis, None, configs, warehouse_url=warehouse_url, before_worker=setup
    )
    try:
        for request in requests:
            run = stack.wait(stack.services.runs.start(request).run_id, timeout=120)
            assert run.status == "completed", (run.error_message, stack.worker.log())
    finally:
        stop()


def run_demo(tmp: Path, redis: Server, configs: Path, warehouse_url: str) -> list[dict]:
    """Run the demo pipeline twice (the second replaces the same slices); cost totals."""
    demo = RunRequest("acme", "demo", "sample", "genai_usage", date(2026, 1, 1), date(2026, 1, 7))
    run_on_stack(tmp, redis, configs, warehouse_url, [demo, demo])
    return from_url(warehouse_url).query(TOTALS, {"org": "acme"}).to_pylist()


@pytest.mark.slow
def test_demo_pipeline_gives_identical_totals_on_duckdb_and_bigquery(
    bigquery_emulator: Server,  # noqa: F811
    redis_server: Server,
    test_configs_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    on_duckdb = run_demo(
        tmp_path_factory.mktemp("e2e-duckdb"),
        redis_server,
        test_configs_dir,
        f"duckdb:///{tmp_path_factory.getbasetemp()}/e2e-warehouse.duckdb",
    )
    on_bigquery = run_demo(
        tmp_path_factory.mktemp("e2e-bigquery"),
        redis_server,
        test_configs_dir,
        f"bigquery://{PROJECT}?location=US&endpoint={bigquery_emulator.url}",
    )
    assert len(on_duckdb) == 5  # 5 models, 7 days each
    assert all(row["days"] == 7 for row in on_duckdb)
    assert on_bigquery == on_duckdb


FOCUS_TOTALS = """
SELECT x_provider, ChargeCategory, COUNT(*) AS charge_rows,
       ROUND(SUM(BilledCost), 9) AS billed, ROUND(SUM(ListCost), 9) AS list_cost,
       ROUND(SUM(PricingQuantity), 3) AS quantity
FROM `acme_dev.cost_data_standard_1_3`
WHERE x_org_slug = @org
GROUP BY x_provider, ChargeCategory
ORDER BY x_provider, ChargeCategory
"""


def run_genai(tmp: Path, redis: Server, configs: Path, warehouse_url: str, api_url: str) -> list:
    """OpenAI sample, then consolidate, on one stack; return the FOCUS totals."""
    days = (date(2026, 1, 1), date(2026, 1, 2))
    secret = {"admin_key": "sk-admin-e2e-0123456789abcdef", "base_url": api_url}
    run_on_stack(
        tmp,
        redis,
        configs,
        warehouse_url,
        [
            RunRequest("acme", "genai", "payg", "openai", *days, "oa"),
            RunRequest("acme", "genai", "unified", "consolidate", *days),
        ],
        credentials=(("openai", secret, "oa"),),
    )
    return from_url(warehouse_url).query(FOCUS_TOTALS, {"org": "acme"}).to_pylist()


@pytest.mark.slow
def test_openai_and_consolidate_give_identical_focus_totals_on_duckdb_and_bigquery(
    bigquery_emulator: Server,  # noqa: F811
    redis_server: Server,
    test_configs_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from tests.support.provider_api import ProviderAPIServer, serve_openai

    api = ProviderAPIServer()
    try:
        serve_openai(api, [date(2026, 1, 1), date(2026, 1, 2)])
        on_duckdb = run_genai(
            tmp_path_factory.mktemp("genai-duckdb"),
            redis_server,
            test_configs_dir,
            f"duckdb:///{tmp_path_factory.getbasetemp()}/genai-warehouse.duckdb",
            api.url,
        )
        on_bigquery = run_genai(
            tmp_path_factory.mktemp("genai-bigquery"),
            redis_server,
            test_configs_dir,
            f"bigquery://{PROJECT}?location=US&endpoint={bigquery_emulator.url}",
            api.url,
        )
    finally:
        api.close()
    assert on_duckdb and {r["x_provider"] for r in on_duckdb} == {"openai"}
    assert sum(r["billed"] for r in on_duckdb) > 0
    assert on_bigquery == on_duckdb
