"""genai.payg_cost: totals against hand-computed figures (cached, batch, tiers, unknown models,
org overrides, provider-reported cost)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from processors.genai.payg_cost import PaygCostProcessor
from processors.genai.rows import cost_row, provider_costs_table, usage_row, usage_table

JAN1 = date(2026, 1, 1)  # before the library's batch variants (2026-10-14): the 50% rule
APR1 = date(2026, 4, 1)  # claude-sonnet-4-6 is flat-priced from 2026-03-13


def usage_fixture() -> list[dict]:
    return [
        # gpt-4o-mini: 0.15 in / 0.075 cached / 0.60 out per 1M.
        # 600k uncached + 400k cached input, 200k output: 0.09 + 0.03 + 0.12 = 0.24
        usage_row(
            "openai", JAN1, "t", model="gpt-4o-mini", project_or_workspace_id="p1",
            input_tokens=1_000_000, cached_input_tokens=400_000, output_tokens=200_000,
            requests=10,
        ),
        # batch: (2M x 0.15 + 1M x 0.60) x 50% = 0.45
        usage_row(
            "openai", JAN1, "t", model="gpt-4o-mini", project_or_workspace_id="p1",
            batch=True, input_tokens=2_000_000, output_tokens=1_000_000, requests=5,
        ),
        # claude-sonnet-4-6: 3 in / 0.30 cache read / 3.75 5m write / 6 1h write / 15 out.
        # 0.1M x 3 + 1M x 0.3 + 0.2M x 3.75 + 0.1M x 6 + 0.05M x 15 = 2.70
        usage_row(
            "anthropic", APR1, "t", model="claude-sonnet-4-6", project_or_workspace_id="ws1",
            input_tokens=1_400_000, cached_input_tokens=1_000_000,
            cache_write_5m_tokens=200_000, cache_write_1h_tokens=100_000, output_tokens=50_000,
        ),
        # claude-sonnet-4-5 is tiered: above 200k input 6 / 22.5, else 3 / 15.
        # long context: 1M x 6 + 0.1M x 22.5 = 8.25; short: 1M x 3 + 0.1M x 15 = 4.50
        usage_row(
            "anthropic", APR1, "t", model="claude-sonnet-4-5", context_window="200k-1M",
            input_tokens=1_000_000, output_tokens=100_000,
        ),
        usage_row(
            "anthropic", APR1, "t", model="claude-sonnet-4-5", context_window="0-200k",
            input_tokens=1_000_000, output_tokens=100_000,
        ),
        # Nobody knows this model: kept, unpriced, counted.
        usage_row(
            "openai", JAN1, "t", model="acme-private-llm", input_tokens=1_000_000, requests=3
        ),
    ]  # fmt: skip


def load(make_ctx, rows, reported=()):  # type: ignore[no-untyped-def]
    ctx = make_ctx({}, JAN1, APR1)
    ctx.write("genai_payg_usage_raw", usage_table(rows), date_column="usage_date")
    ctx.write("genai_payg_provider_costs", provider_costs_table(reported), date_column="usage_date")


def run_cost(make_ctx, **config):  # type: ignore[no-untyped-def]
    ctx = make_ctx(config, JAN1, APR1)
    result = PaygCostProcessor().run(ctx)
    rows = ctx.warehouse.query(
        "SELECT * FROM `acme_dev.genai_payg_costs` ORDER BY provider, model, charge_type"
    ).to_pylist()
    return result, rows, ctx.log.lines


def total(rows: list[dict], column: str, **match: object) -> float:
    return sum(
        r[column] or 0 for r in rows if all(r[k] == v for k, v in match.items())
    )  # fmt: skip


def test_list_costs_match_hand_computed_totals(make_ctx) -> None:  # type: ignore[no-untyped-def]
    load(make_ctx, usage_fixture())
    result, rows, _ = run_cost(make_ctx)
    mini = [r for r in rows if r["model"] == "gpt-4o-mini"]
    assert total([r for r in mini if not r["batch"]], "list_cost") == pytest.approx(0.24)
    assert total([r for r in mini if r["batch"]], "list_cost") == pytest.approx(0.45)
    assert total(rows, "list_cost", model="claude-sonnet-4-6") == pytest.approx(2.70)
    assert total(rows, "list_cost", context_window="200k-1M") == pytest.approx(8.25)
    assert total(rows, "list_cost", context_window="0-200k") == pytest.approx(4.50)
    assert total(rows, "list_cost") == pytest.approx(0.24 + 0.45 + 2.70 + 8.25 + 4.50)
    # Without overrides effective equals list, line by line.
    assert all(r["effective_cost"] == r["list_cost"] for r in rows if r["price_status"] == "priced")
    # Lines: one per token kind, each with a unit price that reproduces its cost.
    sonnet = {r["charge_type"]: r for r in rows if r["model"] == "claude-sonnet-4-6"}
    assert set(sonnet) == {"input", "cached_input", "cache_write_5m", "cache_write_1h", "output"}
    assert sonnet["cache_write_1h"]["quantity"] == 100_000
    assert sonnet["cache_write_1h"]["list_unit_price"] == pytest.approx(6 / 1e6)
    for r in rows:
        if r["list_cost"] is not None:
            assert r["list_unit_price"] * r["quantity"] == pytest.approx(r["list_cost"])
    # Requests ride on one line per usage row, so they sum to the usage.
    assert total(rows, "requests", model="gpt-4o-mini") == 15
    assert result.metrics["list_cost"] == pytest.approx(16.14)


def test_unknown_model_is_kept_unpriced_and_reported(make_ctx) -> None:  # type: ignore[no-untyped-def]
    load(make_ctx, usage_fixture())
    result, rows, log = run_cost(make_ctx)
    unknown = [r for r in rows if r["model"] == "acme-private-llm"]
    assert len(unknown) == 1 and unknown[0]["quantity"] == 1_000_000
    assert unknown[0]["price_status"] == "unpriced"
    assert unknown[0]["list_cost"] is None and unknown[0]["effective_cost"] is None
    assert result.metrics["unpriced_rows"] == 1
    assert result.metrics["unpriced_models"] == ["openai/acme-private-llm"]
    assert any(level == "WARNING" and "acme-private-llm" in text for level, text in log)


def test_org_overrides_win_over_the_library(make_ctx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    overrides = tmp_path / "acme.csv"
    overrides.write_text(
        "provider,model,input_mtok,output_mtok,discount_pct\n"
        "anthropic,claude-sonnet-4-6,,12,\n"  # negotiated output rate 12 instead of 15
        "openai,gpt-4o*,,,10\n"  # 10% off list for the gpt-4o family
        "openai,acme-private-llm,0.5,2,\n"  # our own model: only we know its price
    )
    load(make_ctx, usage_fixture())
    result, rows, _ = run_cost(make_ctx, price_overrides_file=str(overrides))
    # Output 0.05M x 12 = 0.60 instead of 0.75; the other lines keep list prices.
    assert total(rows, "effective_cost", model="claude-sonnet-4-6") == pytest.approx(2.55)
    assert total(rows, "list_cost", model="claude-sonnet-4-6") == pytest.approx(2.70)
    assert total(rows, "effective_cost", model="gpt-4o-mini") == pytest.approx(0.69 * 0.9)
    private = [r for r in rows if r["model"] == "acme-private-llm"]
    assert private[0]["price_status"] == "override"
    assert private[0]["effective_cost"] == pytest.approx(0.5)
    assert result.metrics["unpriced_rows"] == 0


def test_provider_reported_cost_follows_the_line_items(make_ctx) -> None:  # type: ignore[no-untyped-def]
    reported = [
        cost_row("openai", JAN1, "t", project_or_workspace_id="p1", model="gpt-4o-mini",
                 line_item="gpt-4o-mini, input", amount=0.50, currency="usd"),
        cost_row("openai", JAN1, "t", project_or_workspace_id="p1", model="gpt-4o-mini",
                 line_item="gpt-4o-mini, output", amount=0.19, currency="usd"),
        cost_row("openai", JAN1, "t", project_or_workspace_id="p1", model=None,
                 line_item="web search tool calls", amount=0.05, currency="usd"),
    ]  # fmt: skip
    load(make_ctx, usage_fixture(), reported)
    result, rows, _ = run_cost(make_ctx)
    mini = [r for r in rows if r["model"] == "gpt-4o-mini"]
    assert total(mini, "provider_reported_cost") == pytest.approx(0.69)
    # "<model>, input" money is on the input lines only (batch and not, by list cost:
    # 0.09 and 0.15), "<model>, output" on the output lines (0.12 and 0.30).
    inputs = {r["batch"]: r for r in mini if r["charge_type"] == "input"}
    assert inputs[False]["provider_reported_cost"] == pytest.approx(0.50 * 0.09 / 0.24)
    assert inputs[True]["provider_reported_cost"] == pytest.approx(0.50 * 0.15 / 0.24)
    outputs = {r["batch"]: r for r in mini if r["charge_type"] == "output"}
    assert outputs[False]["provider_reported_cost"] == pytest.approx(0.19 * 0.12 / 0.42)
    assert all(r["cost_allocation"] == "report" for r in [*inputs.values(), *outputs.values()])
    cached = [r for r in mini if r["charge_type"] == "cached_input"]
    assert cached and all(r["provider_reported_cost"] is None for r in cached)
    assert all(r["provider_reported_cost"] is None for r in rows if r["model"] != "gpt-4o-mini")
    assert result.metrics["provider_cost_unmatched"] == pytest.approx(0.05)


def test_rerun_replaces_the_slice(make_ctx) -> None:  # type: ignore[no-untyped-def]
    load(make_ctx, usage_fixture())
    _, first, _ = run_cost(make_ctx)
    _, second, _ = run_cost(make_ctx)
    assert len(first) == len(second)
    assert total(first, "list_cost") == pytest.approx(total(second, "list_cost"))
