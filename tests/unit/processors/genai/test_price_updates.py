"""PIPELINE_OPS_PRICES_UPDATE: genai-prices' updater fetches newer price data (here from a
loopback server in the updater's data format); offline, the bundled data prices as before.
Either way each row says which price data priced it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from processors.genai import pricing
from processors.genai.payg_cost import PaygCostProcessor
from processors.genai.rows import provider_costs_table, usage_row, usage_table
from tests.support.genai import convert, step_context
from tests.support.servers import LoopbackHTTPServer, free_port
from warehouse.duckdb import DuckDBWarehouse

DAY = date(2026, 1, 5)
# A model only the "newer" data knows, in the updater's v2 format (a list of providers).
NEWER_DATA = [
    {
        "id": "openai",
        "name": "OpenAI",
        "api_pattern": "https://api\\.openai\\.com",
        "models": [
            {
                "id": "gpt-brand-new",
                "match": {"equals": "gpt-brand-new"},
                "prices": {"input_mtok": 2, "output_mtok": 8},
            }
        ],
    }
]


class PriceData(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps(NEWER_DATA).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture(autouse=True)
def bundled() -> Iterator[None]:
    pricing.use_bundled_prices()
    yield
    pricing.use_bundled_prices()


@pytest.fixture
def server() -> Iterator[LoopbackHTTPServer]:
    srv = LoopbackHTTPServer(PriceData)
    yield srv
    srv.close()


def run(tmp_path: Path) -> tuple[list[dict], list, DuckDBWarehouse]:
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    ctx = step_context(warehouse, {}, DAY, DAY, pipeline_id="p")
    usage = [
        usage_row("openai", DAY, "t", model="gpt-brand-new", input_tokens=1_000_000,
                  output_tokens=100_000, requests=1)
    ]  # fmt: skip
    ctx.write("genai_payg_usage_raw", usage_table(usage), date_column="usage_date")
    ctx.write("genai_payg_provider_costs", provider_costs_table([]), date_column="usage_date")
    ctx = step_context(warehouse, {}, DAY, DAY, pipeline_id="p")
    PaygCostProcessor().run(ctx)
    rows = warehouse.query("SELECT * FROM `acme_dev.genai_payg_costs` ORDER BY charge_type")
    return rows.to_pylist(), ctx.log.lines, warehouse


def test_updated_price_data_prices_a_model_the_bundled_data_does_not_know(
    tmp_path: Path, server: LoopbackHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_OPS_PRICES_UPDATE", "1")
    monkeypatch.setenv("PIPELINE_OPS_PRICES_URL", f"{server.url}/data.json")
    rows, log, warehouse = run(tmp_path)
    assert [r["price_status"] for r in rows] == ["priced", "priced"]
    # 1M input at 2 + 0.1M output at 8 per 1M
    assert sum(r["list_cost"] for r in rows) == pytest.approx(2.0 + 0.8)
    source = pricing.price_source()
    assert source.startswith(f"{pricing.LIBRARY} updater, data from 127.0.0.1 fetched ")
    assert all(r["price_source"] == source for r in rows)
    assert any("price data updated" in text for _, text in log)
    convert(warehouse, "openai", DAY, DAY)
    focus = warehouse.query("SELECT x_price_source FROM `acme_dev.cost_data_standard_1_3`")
    assert set(focus.column("x_price_source").to_pylist()) == {source}


def test_offline_the_bundled_data_prices_and_the_failure_is_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_OPS_PRICES_UPDATE", "1")
    # Nothing listens there: the fetch fails, the run goes on with the bundled data.
    monkeypatch.setenv("PIPELINE_OPS_PRICES_URL", f"http://127.0.0.1:{free_port()}/data.json")
    rows, log, _ = run(tmp_path)
    assert [r["price_status"] for r in rows] == ["unpriced", "unpriced"]
    assert pricing.price_source() == pricing.BUNDLED
    assert any(
        level == "WARNING" and "price data update failed" in text
        and f"pricing with {pricing.BUNDLED}" in text
        for level, text in log
    )  # fmt: skip


def test_a_refused_host_is_not_fetched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The egress policy applies: a private address outside the allow-list is refused
    # before any packet is sent.
    monkeypatch.setenv("PIPELINE_OPS_PRICES_UPDATE", "1")
    monkeypatch.setenv("PIPELINE_OPS_PRICES_URL", "http://10.11.12.13/data.json")
    _, log, _ = run(tmp_path)
    assert pricing.price_source() == pricing.BUNDLED
    assert any("price data update failed" in text for _, text in log)


def test_without_the_opt_in_nothing_is_fetched(
    tmp_path: Path, server: LoopbackHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PIPELINE_OPS_PRICES_UPDATE", raising=False)
    monkeypatch.setenv("PIPELINE_OPS_PRICES_URL", f"{server.url}/data.json")
    rows, _, _ = run(tmp_path)
    assert [r["price_status"] for r in rows] == ["unpriced", "unpriced"]
    assert {r["price_source"] for r in rows} == {None}
    assert pricing.price_source() == pricing.BUNDLED
