"""genai.payg_usage against a local server speaking the documented admin API formats.

Paging over 3 pages, the exact rows, the request parameters and headers, and the error
mapping: 429 (with Retry-After) and 500 are transient and write nothing, 401 is terminal
with a message that says which credential is needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from pipeline_ops_core.errors import TerminalError, TransientError
from processors.genai.payg_usage import PaygUsageProcessor
from tests.support.genai import step_context
from tests.support.provider_api import (
    RAW_COLUMNS,
    ProviderAPIServer,
    expected_openai_rows,
    serve_anthropic,
    serve_openai,
)
from warehouse.base import TableRef
from warehouse.duckdb import DuckDBWarehouse

DAYS = [date(2026, 1, 1), date(2026, 1, 2)]
OPENAI = {"provider": "openai", "source": "api"}
ANTHROPIC = {"provider": "anthropic", "source": "api"}


@pytest.fixture
def api() -> Iterator[ProviderAPIServer]:
    server = ProviderAPIServer()
    yield server
    server.close()


@pytest.fixture
def warehouse(tmp_path: Path) -> DuckDBWarehouse:
    return DuckDBWarehouse(tmp_path / "warehouse.duckdb")


def run(warehouse: DuckDBWarehouse, api: ProviderAPIServer, config: dict, key: str = "sk-admin-x"):  # type: ignore[no-untyped-def]
    ctx = step_context(
        warehouse, config, DAYS[0], DAYS[1], credential={"admin_key": key, "base_url": api.url}
    )
    return PaygUsageProcessor().run(ctx), ctx


def raw_rows(warehouse: DuckDBWarehouse) -> list[tuple]:
    rows = warehouse.query(f"SELECT {RAW_COLUMNS} FROM `acme_dev.genai_payg_usage_raw`")
    return sorted((tuple(r.values()) for r in rows.to_pylist()), key=repr)


def test_openai_follows_next_page_and_rows_equal_the_served_data(
    warehouse: DuckDBWarehouse, api: ProviderAPIServer
) -> None:
    serve_openai(api, DAYS)
    result, ctx = run(warehouse, api, OPENAI)
    assert api.paths() == [
        ("/organization/usage/completions", None),
        ("/organization/usage/completions", "page_2"),
        ("/organization/usage/completions", "page_3"),
        ("/organization/usage/embeddings", None),
        ("/organization/costs", None),
    ]
    assert raw_rows(warehouse) == expected_openai_rows(api)
    assert result.metrics["usage_rows"] == 6 and result.metrics["provider_cost_rows"] == 2
    first = api.requests[0]
    assert first["headers"]["Authorization"] == "Bearer sk-admin-x"
    query = first["query"]
    assert query["bucket_width"] == ["1d"]
    assert query["group_by[]"] == ["model", "project_id", "api_key_id", "batch", "service_tier"]
    # UTC days: midnight of the first day to midnight after the last.
    assert query["start_time"] == ["1767225600"] and query["end_time"] == ["1767398400"]
    costs = warehouse.query(
        "SELECT model, line_item, amount, currency FROM `acme_dev.genai_payg_provider_costs`"
        " ORDER BY line_item"
    ).to_pylist()
    assert costs == [
        {"model": "gpt-4o-mini-2024-07-18", "line_item": "gpt-4o-mini-2024-07-18, input",
         "amount": 0.04, "currency": "USD"},
        {"model": "gpt-4o-mini-2024-07-18", "line_item": "gpt-4o-mini-2024-07-18, output",
         "amount": 0.05, "currency": "USD"},
    ]  # fmt: skip
    assert any("base_url (host 127.0.0.1" in text for _, text in ctx.log.lines)


def test_anthropic_paging_headers_and_token_arithmetic(
    warehouse: DuckDBWarehouse, api: ProviderAPIServer
) -> None:
    serve_anthropic(api, DAYS)
    run(warehouse, api, ANTHROPIC, key="sk-ant-admin-y")
    assert [p for p in api.paths() if p[0] == "/usage_report/messages"] == [
        ("/usage_report/messages", None),
        ("/usage_report/messages", "page_2"),
        ("/usage_report/messages", "page_3"),
    ]
    headers = api.requests[0]["headers"]
    assert headers["x-api-key"] == "sk-ant-admin-y"
    assert headers["anthropic-version"] == "2023-06-01"
    query = api.requests[0]["query"]
    assert query["starting_at"] == ["2026-01-01T00:00:00Z"]
    assert query["ending_at"] == ["2026-01-03T00:00:00Z"]
    assert query["group_by[]"] == [
        "model", "workspace_id", "api_key_id", "service_tier", "context_window"
    ]  # fmt: skip
    expected = []
    for page in api.routes["/usage_report/messages"]:
        for bucket in page["data"]:
            for r in bucket["results"]:
                cache = r["cache_creation"]
                expected.append(
                    {
                        "usage_date": date.fromisoformat(bucket["starting_at"][:10]),
                        "model": r["model"],
                        "project_or_workspace_id": r["workspace_id"],
                        "api_key_id": r["api_key_id"],
                        "service_tier": r["service_tier"],
                        "context_window": r["context_window"],
                        "batch": r["service_tier"] == "batch",
                        "input_tokens": r["uncached_input_tokens"]
                        + cache["ephemeral_5m_input_tokens"]
                        + cache["ephemeral_1h_input_tokens"]
                        + r["cache_read_input_tokens"],
                        "cached_input_tokens": r["cache_read_input_tokens"],
                        "cache_write_5m_tokens": cache["ephemeral_5m_input_tokens"],
                        "cache_write_1h_tokens": cache["ephemeral_1h_input_tokens"],
                        "output_tokens": r["output_tokens"],
                        "web_search_requests": r["server_tool_use"]["web_search_requests"],
                    }
                )
    got = warehouse.query(
        f"SELECT {', '.join(expected[0])} FROM `acme_dev.genai_payg_usage_raw`"
    ).to_pylist()
    assert sorted(got, key=repr) == sorted(expected, key=repr)
    cost = warehouse.query("SELECT amount FROM `acme_dev.genai_payg_provider_costs`").to_pylist()
    assert cost == [{"amount": pytest.approx(1.2345)}]  # "123.45" cents


def test_429_is_transient_with_retry_after_and_writes_nothing(
    warehouse: DuckDBWarehouse, api: ProviderAPIServer
) -> None:
    serve_openai(api, DAYS)
    # Page 1 succeeds, page 2 is rate limited: nothing of page 1 may be written.
    api.routes["/organization/usage/completions"][1] = {"object": "page", "data": []}
    api.faults = []
    original = api._answer

    def limited(raw: str, headers: dict) -> tuple:  # type: ignore[type-arg]
        if "page=page_2" in raw:
            return 429, {"Retry-After": "7"}, {"error": {"message": "rate limited"}}
        return original(raw, headers)

    api._answer = limited  # type: ignore[method-assign]
    with pytest.raises(TransientError) as raised:
        run(warehouse, api, OPENAI)
    assert raised.value.retry_after == 7
    assert "HTTP 429" in str(raised.value)
    assert warehouse.table_schema(TableRef("acme_dev", "genai_payg_usage_raw")) is None
    # The retry then gets everything.
    api._answer = original  # type: ignore[method-assign]
    serve_openai(api, DAYS)
    run(warehouse, api, OPENAI)
    assert raw_rows(warehouse) == expected_openai_rows(api)


def test_500_is_transient_then_the_retry_succeeds(
    warehouse: DuckDBWarehouse, api: ProviderAPIServer
) -> None:
    serve_anthropic(api, DAYS)
    api.fail(500)
    with pytest.raises(TransientError, match="HTTP 500"):
        run(warehouse, api, ANTHROPIC)
    result, _ = run(warehouse, api, ANTHROPIC)
    assert result.metrics["usage_rows"] == 3


def test_401_is_terminal_with_a_clear_message(
    warehouse: DuckDBWarehouse, api: ProviderAPIServer
) -> None:
    serve_openai(api, DAYS)
    api.fail(401)
    with pytest.raises(TerminalError) as raised:
        run(warehouse, api, OPENAI, key="sk-proj-not-admin")
    message = str(raised.value)
    assert "HTTP 401" in message and "credentials rejected" in message
    assert "admin key" in message
    assert len(api.requests) == 1
    assert warehouse.table_schema(TableRef("acme_dev", "genai_payg_usage_raw")) is None


def test_a_base_url_override_must_be_http(warehouse: DuckDBWarehouse) -> None:
    ctx = step_context(
        warehouse, OPENAI, DAYS[0], credential={"admin_key": "k", "base_url": "file:///etc"}
    )
    with pytest.raises(TerminalError, match="http"):
        PaygUsageProcessor().run(ctx)
