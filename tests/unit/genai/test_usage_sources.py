"""genai.payg_usage from files and the warehouse: DeepSeek exports and the GCP billing export."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from errors import TerminalError
from processors.genai.gemini_billing import parse_sku
from processors.genai.payg_usage import PaygUsageProcessor
from warehouse.duckdb import DuckDBWarehouse

DEEPSEEK_COLUMNS = {
    "usage_date": "date",
    "model": "model",
    "api_key_id": "api_key_name",
    "input_tokens": ["prompt_cache_hit_tokens", "prompt_cache_miss_tokens"],
    "cached_input_tokens": "prompt_cache_hit_tokens",
    "output_tokens": "completion_tokens",
    "requests": "requests",
}


def test_deepseek_export_with_a_column_mapping(make_ctx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    export = tmp_path / "deepseek.csv"
    export.write_text(
        "date,model,api_key_name,prompt_cache_hit_tokens,prompt_cache_miss_tokens,"
        "completion_tokens,requests\n"
        "2026-01-01,deepseek-chat,key-a,100,900,500,3\n"
        "2026-01-01,deepseek-chat,key-a,50,50,10,1\n"  # same day and key: summed
        "2026-01-02,deepseek-reasoner,key-b,0,2000,3000,2\n"
        "2026-01-05,deepseek-chat,key-a,1,1,1,1\n"  # outside the run: ignored
    )
    config = {"provider": "deepseek", "source": "export", "path": str(export),
              "columns": DEEPSEEK_COLUMNS}  # fmt: skip
    ctx = make_ctx(config, date(2026, 1, 1), date(2026, 1, 2))
    assert PaygUsageProcessor().run(ctx).rows_written == 2
    rows = ctx.warehouse.query(
        "SELECT usage_date, model, api_key_id, input_tokens, cached_input_tokens, output_tokens,"
        " requests, source FROM `acme_dev.genai_payg_usage_raw` ORDER BY usage_date"
    ).to_pylist()
    assert rows == [
        {"usage_date": date(2026, 1, 1), "model": "deepseek-chat", "api_key_id": "key-a",
         "input_tokens": 1100, "cached_input_tokens": 150, "output_tokens": 510, "requests": 4,
         "source": "export:deepseek.csv"},
        {"usage_date": date(2026, 1, 2), "model": "deepseek-reasoner", "api_key_id": "key-b",
         "input_tokens": 2000, "cached_input_tokens": 0, "output_tokens": 3000, "requests": 2,
         "source": "export:deepseek.csv"},
    ]  # fmt: skip


def test_export_problems_are_terminal(make_ctx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ctx = make_ctx({"provider": "deepseek", "path": str(tmp_path / "absent.csv")}, date(2026, 1, 1))
    with pytest.raises(TerminalError, match="not found"):
        PaygUsageProcessor().run(ctx)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"usage_date": "2026-01-01", "model": "m", "input_tokens": -5}\n')
    ctx = make_ctx({"provider": "deepseek", "path": str(bad)}, date(2026, 1, 1))
    with pytest.raises(TerminalError, match="non-negative"):
        PaygUsageProcessor().run(ctx)
    ctx = make_ctx({"provider": "nobody", "path": str(bad)}, date(2026, 1, 1))
    with pytest.raises(TerminalError, match=r"not in providers\.yml"):
        PaygUsageProcessor().run(ctx)


def test_sku_descriptions() -> None:
    assert parse_sku("Generate content output token count gemini 2.5 flash short input text") == (
        "gemini-2.5-flash", "output", "0-200k")  # fmt: skip
    assert parse_sku("Generate content input token count Gemini 2.5 Pro long input text") == (
        "gemini-2.5-pro", "input", "200k-1M")  # fmt: skip
    assert parse_sku("Cached content token count gemini 2.0 flash lite") == (
        "gemini-2.0-flash-lite", "cached_input", None)  # fmt: skip
    assert parse_sku("Grounding with Google Search requests")[1] == "other"


def test_gemini_from_the_billing_export_in_the_warehouse(
    make_ctx,
    warehouse: DuckDBWarehouse,  # type: ignore[no-untyped-def]
) -> None:
    warehouse.ensure_dataset("billing")
    con = duckdb.connect(str(warehouse.path))
    con.execute(
        "CREATE TABLE billing.gcp_export (usage_start_time TIMESTAMPTZ,"
        " service STRUCT(id VARCHAR, description VARCHAR),"
        " sku STRUCT(id VARCHAR, description VARCHAR), project STRUCT(id VARCHAR),"
        " usage STRUCT(amount DOUBLE, unit VARCHAR), cost DOUBLE, currency VARCHAR,"
        " credits STRUCT(name VARCHAR, amount DOUBLE)[])"
    )
    gemini, vertex, other = "AEFD-7695-64FA", "C7E2-9256-1C43", "6F81-5844-456A"
    out = "Generate content output token count gemini 2.5 flash short input text"
    inp = "Generate content input token count gemini 2.5 flash short input text"
    con.executemany(
        "INSERT INTO billing.gcp_export VALUES (?, {'id': ?, 'description': 'x'},"
        " {'id': 's', 'description': ?}, {'id': ?}, {'amount': ?, 'unit': 'count'}, ?, 'USD', ?)",
        [
            ["2026-01-01 10:00:00+00", gemini, inp, "proj", 1_000_000, 0.30, []],
            ["2026-01-01 11:00:00+00", gemini, out, "proj", 100_000, 0.25,
             [{"name": "free tier", "amount": -0.05}]],
            ["2026-01-01 12:00:00+00", vertex, out, "proj", 100_000, 0.25, []],
            ["2026-01-01 12:00:00+00", other, out, "proj", 100_000, 99.0, []],  # not Gemini
            ["2026-01-03 01:00:00+00", gemini, out, "proj", 100_000, 0.25, []],  # another day
        ],
    )  # fmt: skip
    con.close()
    ctx = make_ctx({"provider": "gemini", "billing_table": "billing.gcp_export"}, date(2026, 1, 1))
    result = PaygUsageProcessor().run(ctx)
    assert result.metrics["usage_rows"] == 1
    row = ctx.warehouse.query("SELECT * FROM `acme_dev.genai_payg_usage_raw`").to_pylist()[0]
    assert (row["model"], row["input_tokens"], row["output_tokens"]) == (
        "gemini-2.5-flash", 1_000_000, 200_000)  # fmt: skip
    costs = ctx.warehouse.query(
        "SELECT SUM(amount) AS total FROM `acme_dev.genai_payg_provider_costs`"
    )
    assert costs.to_pylist()[0]["total"] == pytest.approx(0.30 + 0.25 - 0.05 + 0.25)
