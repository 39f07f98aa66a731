"""genai.payg_usage from files and the warehouse: DeepSeek exports and the GCP billing export."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from pipeline_ops_core.errors import TerminalError
from processors.genai.gemini_billing import parse_sku
from processors.genai.payg_usage import PaygUsageProcessor
from warehouse.base import TableRef
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


def test_null_tokens_in_a_usage_export_csv_are_no_value(make_ctx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Database dumps write NULL for no value: no key, zero tokens, never the text "NULL".
    export = tmp_path / "deepseek.csv"
    export.write_text(
        "date,model,api_key_name,prompt_cache_hit_tokens,prompt_cache_miss_tokens,"
        "completion_tokens,requests\n"
        "2026-01-01,deepseek-chat,NULL,NULL,900,500,NULL\n"
    )
    config = {"provider": "deepseek", "source": "export", "path": str(export),
              "columns": DEEPSEEK_COLUMNS}  # fmt: skip
    ctx = make_ctx(config, date(2026, 1, 1), date(2026, 1, 1))
    assert PaygUsageProcessor().run(ctx).rows_written == 1
    (row,) = ctx.warehouse.query(
        "SELECT api_key_id, input_tokens, cached_input_tokens, requests"
        " FROM `acme_dev.genai_payg_usage_raw`"
    ).to_pylist()
    assert row == {"api_key_id": None, "input_tokens": 900, "cached_input_tokens": 0, "requests": 0}


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


def test_gemini_never_reads_the_billing_table_through_the_platform_warehouse(
    make_ctx,
    warehouse: DuckDBWarehouse,  # type: ignore[no-untyped-def]
) -> None:
    """A billing_table in the platform's warehouse (another org's dataset) is not read: the
    export is read with the org's own key, and a credential without one gets nothing."""
    warehouse.ensure_dataset("other_dev")
    con = duckdb.connect(str(warehouse.path))
    con.execute("CREATE TABLE other_dev.gcp_billing_export_v1_01A2B3_C4D5E6_F7A8B9 (x INT)")
    con.close()
    for table in ("local.other_dev.gcp_billing_export_v1_01A2B3_C4D5E6_F7A8B9", "other_dev.t"):
        ctx = make_ctx({"provider": "gemini", "billing_table": table}, date(2026, 1, 1))
        with pytest.raises(TerminalError, match=r"billing_table|own service account"):
            PaygUsageProcessor().run(ctx)
    assert warehouse.table_schema(TableRef("acme_dev", "genai_payg_usage_raw")) is None
