"""Charge lines as the providers report them: every token kind its own line, reported money
on the line the report names, and one rule for models nobody priced."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from processors.genai import anthropic_api, openai_api, pricing
from processors.genai.payg_cost import PaygCostProcessor
from processors.genai.rows import cost_row, provider_costs_table, usage_table
from tests.support.genai import convert, step_context
from warehouse.duckdb import DuckDBWarehouse

AUG1 = date(2025, 8, 1)
NOV1 = date(2024, 11, 1)
WORKSPACE = "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ"
SONNET = "claude-sonnet-4-20250514"

# The documented examples (usage_report/messages and cost_report, 2025-08-01), as the
# extractor receives one result of each.
ANTHROPIC_USAGE = {
    "api_key_id": "apikey_01Rj2N8SVvo6BePZj99NhmiT",
    "cache_creation": {"ephemeral_1h_input_tokens": 1000, "ephemeral_5m_input_tokens": 500},
    "cache_read_input_tokens": 200,
    "context_window": "0-200k",
    "model": SONNET,
    "output_tokens": 500,
    "server_tool_use": {"web_search_requests": 10},
    "service_tier": "standard",
    "uncached_input_tokens": 1500,
    "workspace_id": WORKSPACE,
}
# OpenAI's documented completions example (its model is null there; named here to price it).
OPENAI_COMPLETIONS = {
    "input_tokens": 1000, "input_cached_tokens": 400, "input_cache_write_tokens": 100,
    "input_uncached_tokens": 500, "output_tokens": 500, "input_text_tokens": 400,
    "output_text_tokens": 400, "input_cached_text_tokens": 300, "input_audio_tokens": 50,
    "input_cached_audio_tokens": 50, "output_audio_tokens": 50, "input_image_tokens": 50,
    "input_cached_image_tokens": 50, "output_image_tokens": 50, "num_model_requests": 5,
    "project_id": "proj_1", "api_key_id": None, "model": "gpt-4o-mini", "batch": None,
    "service_tier": None,
}  # fmt: skip


def run_costs(
    warehouse: DuckDBWarehouse, usage: list[dict], reported: list[dict], day: date
) -> tuple[list[dict], object, list]:
    ctx = step_context(warehouse, {}, day, day, pipeline_id="p")
    ctx.write("genai_payg_usage_raw", usage_table(usage), date_column="usage_date")
    ctx.write("genai_payg_provider_costs", provider_costs_table(reported), date_column="usage_date")
    ctx = step_context(warehouse, {}, day, day, pipeline_id="p")
    result = PaygCostProcessor().run(ctx)
    rows = warehouse.query(
        "SELECT * FROM `acme_dev.genai_payg_costs` ORDER BY charge_type"
    ).to_pylist()
    return rows, result, ctx.log.lines


@pytest.fixture
def warehouse(tmp_path) -> DuckDBWarehouse:  # type: ignore[no-untyped-def]
    return DuckDBWarehouse(tmp_path / "w.duckdb")


def test_anthropic_reported_cost_lands_on_the_charge_line_the_report_names(
    warehouse: DuckDBWarehouse,
) -> None:
    usage = [anthropic_api._usage(AUG1, ANTHROPIC_USAGE)]
    reported = [
        cost_row(
            "anthropic", AUG1, "anthropic_admin_api:cost_report",
            project_or_workspace_id=WORKSPACE, model=SONNET,
            line_item="Claude Sonnet 4 Usage - Input Tokens", cost_type="tokens",
            token_type="uncached_input_tokens", service_tier="standard",
            context_window="0-200k", amount=float(Decimal("123.78912") / 100), currency="USD",
        )
    ]  # fmt: skip
    rows, _, _ = run_costs(warehouse, usage, reported, AUG1)
    by_line = {r["charge_type"]: r for r in rows}
    assert set(by_line) == {
        "input", "cached_input", "cache_write_5m", "cache_write_1h", "output", "web_search"
    }  # fmt: skip
    # All of the report's input-token money is on the uncached input line...
    assert by_line["input"]["provider_reported_cost"] == pytest.approx(1.2378912)
    assert by_line["input"]["cost_allocation"] == "report"
    # ... and none of it on lines the report says nothing about (web search, output, ...).
    for charge in ("web_search", "output", "cached_input", "cache_write_5m", "cache_write_1h"):
        assert by_line[charge]["provider_reported_cost"] is None, charge
        assert by_line[charge]["cost_allocation"] is None, charge


def test_reported_money_the_report_does_not_break_down_is_shared_and_says_so(
    warehouse: DuckDBWarehouse,
) -> None:
    usage = [anthropic_api._usage(AUG1, ANTHROPIC_USAGE)]
    reported = [
        cost_row("anthropic", AUG1, "t", project_or_workspace_id=WORKSPACE, model=SONNET,
                 token_type="output_tokens", cost_type="tokens", amount=0.75),
        # A total with no token type: only this part is shared, by list cost.
        cost_row("anthropic", AUG1, "t", project_or_workspace_id=WORKSPACE, model=SONNET,
                 amount=1.0),
    ]  # fmt: skip
    rows, _, _ = run_costs(warehouse, usage, reported, AUG1)
    by_line = {r["charge_type"]: r for r in rows}
    shared = 1.0 * by_line["output"]["list_cost"] / sum(r["list_cost"] for r in rows)
    assert by_line["output"]["provider_reported_cost"] == pytest.approx(0.75 + shared)
    assert by_line["output"]["cost_allocation"] == "report+shared"
    assert by_line["input"]["cost_allocation"] == "shared"
    assert sum(r["provider_reported_cost"] for r in rows) == pytest.approx(1.75)


def test_openai_cache_writes_audio_and_image_tokens_are_their_own_lines(
    warehouse: DuckDBWarehouse,
) -> None:
    usage = [openai_api._usage("completions", NOV1, OPENAI_COMPLETIONS)]
    rows, result, _ = run_costs(warehouse, usage, [], NOV1)
    quantity = {r["charge_type"]: r["quantity"] for r in rows}
    assert quantity == {
        "input": 500,  # the uncached text input, nothing else folded in
        "cached_input": 300,
        "cache_write": 100,
        "cached_input_audio": 50,
        "cached_input_image": 50,
        "output": 400,
        "output_audio": 50,
        "output_image": 50,
    }
    # Every token the endpoint reported is on exactly one line.
    assert sum(q for c, q in quantity.items() if not c.startswith("output")) == 1000
    assert sum(q for c, q in quantity.items() if c.startswith("output")) == 500
    status = {r["charge_type"]: r["price_status"] for r in rows}
    # gpt-4o-mini has no cache-write, audio or image price in genai-prices: recorded as
    # unpriced with its quantity, never priced as text input.
    for charge in ("cache_write", "cached_input_audio", "cached_input_image", "output_image"):
        assert status[charge] == "unpriced", charge
    assert status["input"] == status["cached_input"] == status["output"] == "priced"
    by_line = {r["charge_type"]: r for r in rows}
    assert by_line["input"]["list_cost"] == pytest.approx(500 * 0.15 / 1e6)
    assert result.metrics["unpriced_rows"] == 1


def test_an_unpriced_model_has_zero_list_cost_and_the_provider_cost_billed(
    warehouse: DuckDBWarehouse,
) -> None:
    usage = [
        openai_api._usage(
            "completions", NOV1,
            {"model": "acme-private-llm", "project_id": "proj_1", "input_tokens": 1000,
             "output_tokens": 10, "num_model_requests": 1},
        )
    ]  # fmt: skip
    reported = [
        cost_row("openai", NOV1, "t", project_or_workspace_id="proj_1",
                 model="acme-private-llm", line_item="acme-private-llm, input", amount=0.25)
    ]  # fmt: skip
    _, _, log = run_costs(warehouse, usage, reported, NOV1)
    convert(warehouse, "openai", NOV1, NOV1)
    lines = warehouse.query(
        "SELECT * FROM `acme_dev.cost_data_standard_1_3` ORDER BY x_charge_type"
    ).to_pylist()
    assert [r["x_charge_type"] for r in lines] == ["input", "output"]
    for r in lines:
        assert r["x_price_status"] == "unpriced"
        # The rule: nobody published a price, so the list price and cost are 0 ...
        assert r["ListCost"] == 0 and r["ListUnitPrice"] == 0
        assert r["ContractedCost"] == 0 and r["ContractedUnitPrice"] == 0
    # ... and what the provider charged is billed, on the line it names.
    assert lines[0]["BilledCost"] == lines[0]["EffectiveCost"] == pytest.approx(0.25)
    assert lines[1]["BilledCost"] == 0
    assert any(level == "WARNING" and "1 usage rows have no price" in t for level, t in log)


def test_each_focus_row_names_the_price_data_that_priced_it(warehouse: DuckDBWarehouse) -> None:
    usage = [openai_api._usage("completions", NOV1, OPENAI_COMPLETIONS)]
    run_costs(warehouse, usage, [], NOV1)
    convert(warehouse, "openai", NOV1, NOV1)
    lines = warehouse.query(
        "SELECT x_charge_type, x_price_status, x_price_source"
        " FROM `acme_dev.cost_data_standard_1_3`"
    ).to_pylist()
    assert lines
    for line in lines:
        if line["x_price_status"] == "priced":
            assert line["x_price_source"] == pricing.BUNDLED, line
            assert line["x_price_source"].startswith("genai-prices ")
        else:
            assert line["x_price_source"] is None, line
