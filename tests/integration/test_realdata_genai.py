"""Real provider examples through the GenAI pipelines, served as the APIs serve them.

The documented example responses of OpenAI's and Anthropic's Admin APIs (../shared/realdata,
see tests/support/realdata.py) are served byte for byte by a loopback HTTP server; both
completions and Anthropic's reports say `has_more: true` with their own `next_page` token,
which the server answers with a closing page (`has_more: false`). The shipped pipelines run
end to end (extract, price, FOCUS). Expected figures are read from the same JSON here, with
Decimal, independently of the project's code.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from processors.genai import openai_api
from tests.support.cloud import assert_focus_rows_valid, focus_rows, money, run_pipeline
from tests.support.provider_api import ProviderAPIServer
from tests.support.realdata import realdata_json
from warehouse.duckdb import DuckDBWarehouse


def closing_page() -> dict[str, Any]:
    return {"object": "page", "data": [], "has_more": False, "next_page": None}


@pytest.fixture
def api() -> Iterator[ProviderAPIServer]:
    server = ProviderAPIServer()
    yield server
    server.close()


@pytest.fixture
def warehouse(tmp_path: Path) -> DuckDBWarehouse:
    return DuckDBWarehouse(tmp_path / "w.duckdb")


def served(api: ProviderAPIServer, path: str, document: dict[str, Any]) -> None:
    pages: dict[str | None, dict[str, Any]] = {None: document}
    if document.get("has_more"):
        pages[document["next_page"]] = closing_page()
    api.serve_documents(path, pages)


def usage_sums(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {
        k: sum(int(r[k]) for r in rows)
        for k in ("input_tokens", "cached_input_tokens", "output_tokens", "requests")
    }


# -- OpenAI ---------------------------------------------------------------------------------


def test_openai_documented_examples_end_to_end(
    api: ProviderAPIServer, warehouse: DuckDBWarehouse
) -> None:
    completions = realdata_json("openai/usage_completions.json")
    embeddings = realdata_json("openai/usage_embeddings.json")
    costs = realdata_json("openai/costs.json")
    served(api, "/organization/usage/completions", completions)
    served(api, "/organization/usage/embeddings", embeddings)
    served(api, "/organization/costs", costs)
    day = datetime.fromtimestamp(completions["data"][0]["start_time"], UTC).date()

    results = run_pipeline(
        warehouse,
        "configs/genai/payg/openai.yml",
        start=day,
        end=day,
        credential={"admin_key": "sk-admin-realdata", "base_url": api.url},
    )

    # The documented next_page token was sent back as given, and the closing page ended it.
    assert ("/organization/usage/completions", completions["next_page"]) in api.paths()
    source = [r for doc in (completions, embeddings) for b in doc["data"] for r in b["results"]]
    raw = warehouse.query("SELECT * FROM `acme_dev.genai_payg_usage_raw`").to_pylist()
    assert results["extract"].rows_written == len(source) == len(raw)
    (done,) = [r for r in raw if r["source"] == "openai_admin_api:completions"]
    result = completions["data"][0]["results"][0]
    # Every token kind the endpoint returned is kept, none folded into another.
    assert (done["input_tokens"], done["cached_input_tokens"], done["cache_write_tokens"]) == (
        result["input_tokens"],
        result["input_cached_tokens"],
        result["input_cache_write_tokens"],
    )
    assert (done["input_audio_tokens"], done["cached_input_audio_tokens"]) == (
        result["input_audio_tokens"],
        result["input_cached_audio_tokens"],
    )
    assert (done["input_image_tokens"], done["output_image_tokens"]) == (
        result["input_image_tokens"],
        result["output_image_tokens"],
    )
    assert done["requests"] == result["num_model_requests"]

    # FOCUS: one row per token kind; the quantities add up to what the endpoint reported.
    rows = focus_rows(warehouse, "acme", "openai")
    assert_focus_rows_valid(rows)
    assert {r["ChargeCategory"] for r in rows} == {"Usage"}
    consumed = sum(Decimal(str(r["ConsumedQuantity"])) for r in rows)
    reported = sum(Decimal(r["input_tokens"] + r.get("output_tokens", 0)) for r in source)
    assert consumed == reported
    charge_types = {r["x_charge_type"] for r in rows if r["x_model"] is None}
    assert {"cache_write", "cached_input_audio", "cached_input_image", "output_image"} <= (
        charge_types
    )
    # The example names no model: nothing can price it, so every row is unpriced, list 0.
    assert all(r["x_price_status"] == "unpriced" and r["ListCost"] == 0 for r in rows)
    assert all(r["Tags"] is None for r in rows)

    # The costs example has no line item, project or model (no group_by), as the usage has
    # none: its amount is all shared over the day's usage rows (x_cost_allocation says so),
    # and FOCUS bills exactly what OpenAI reported, to the cent.
    amount = Decimal(str(costs["data"][0]["results"][0]["amount"]["value"]))
    stored = warehouse.query("SELECT amount FROM `acme_dev.genai_payg_provider_costs`")
    assert money(stored.column("amount")[0].as_py()) == money(amount)
    assert results["calculate"].metrics["provider_cost_unmatched"] == 0
    assert all(r["x_cost_allocation"] == "shared" for r in rows)
    assert money(sum(Decimal(str(r["BilledCost"])) for r in rows)) == money(amount)


def test_openai_moderations_example_is_read(api: ProviderAPIServer) -> None:
    moderations = realdata_json("openai/usage_moderations.json")
    served(api, "/organization/usage/moderations", moderations)
    day = datetime.fromtimestamp(moderations["data"][0]["start_time"], UTC).date()
    rows = openai_api.fetch_usage(
        api.url, "sk-admin-realdata", day, day, 10, endpoints=("moderations",)
    )
    result = moderations["data"][0]["results"][0]
    assert [(r["input_tokens"], r["requests"]) for r in rows] == [
        (result["input_tokens"], result["num_model_requests"])
    ]


# -- Anthropic ------------------------------------------------------------------------------


def test_anthropic_documented_examples_end_to_end(
    api: ProviderAPIServer, warehouse: DuckDBWarehouse
) -> None:
    usage = realdata_json("anthropic/usage_report_messages.json")
    cost = realdata_json("anthropic/cost_report.json")
    served(api, "/usage_report/messages", usage)
    served(api, "/cost_report", cost)
    day = date.fromisoformat(usage["data"][0]["starting_at"][:10])

    results = run_pipeline(
        warehouse,
        "configs/genai/payg/anthropic.yml",
        start=day,
        end=day,
        credential={"admin_key": "sk-ant-admin-realdata", "base_url": api.url},
    )

    assert ("/usage_report/messages", usage["next_page"]) in api.paths()
    assert ("/cost_report", cost["next_page"]) in api.paths()
    assert results["calculate"].metrics["provider_cost_unmatched"] == 0
    rows = focus_rows(warehouse, "acme", "anthropic")
    assert_focus_rows_valid(rows)
    assert {r["ChargeCategory"] for r in rows} == {"Usage"}
    by_line = {r["x_charge_type"]: r for r in rows}
    u = usage["data"][0]["results"][0]
    assert by_line["input"]["ConsumedQuantity"] == u["uncached_input_tokens"]
    assert by_line["cached_input"]["ConsumedQuantity"] == u["cache_read_input_tokens"]
    assert (
        by_line["cache_write_5m"]["ConsumedQuantity"]
        == (u["cache_creation"]["ephemeral_5m_input_tokens"])
    )
    assert (
        by_line["cache_write_1h"]["ConsumedQuantity"]
        == (u["cache_creation"]["ephemeral_1h_input_tokens"])
    )
    assert (
        by_line["web_search"]["ConsumedQuantity"] == (u["server_tool_use"]["web_search_requests"])
    )
    # The report's money (cents) is billed on the line its token_type names, and only there.
    c = cost["data"][0]["results"][0]
    assert c["token_type"] == "uncached_input_tokens"
    dollars = Decimal(c["amount"]) / 100
    assert Decimal(str(by_line["input"]["BilledCost"])).quantize(Decimal("1e-7")) == (
        dollars.quantize(Decimal("1e-7"))
    )
    assert by_line["input"]["x_cost_allocation"] == "report"
    others = [r for r in rows if r["x_charge_type"] != "input"]
    assert all(r["x_cost_allocation"] is None for r in others)
    # The other lines are billed at list price (nothing reported for them), so the total is
    # the report's amount plus their list cost, to the cent.
    expected = dollars + sum(Decimal(str(r["ListCost"])) for r in others)
    assert money(sum(Decimal(str(r["BilledCost"])) for r in rows)) == money(expected)
    assert all(r["x_price_status"] == "priced" for r in rows)
    assert all(r["x_price_source"].startswith("genai-prices ") for r in rows)
