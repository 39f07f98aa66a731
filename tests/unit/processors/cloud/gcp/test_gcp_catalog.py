"""GcpApiExtractor against the local Catalog API server: paging, prices, auth and errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline_ops_core.egress import EgressClient
from pipeline_ops_core.errors import TerminalError, TransientError
from processors.cloud.gcp.catalog import GcpApiExtractor, list_skus, price_rows, unit_price
from tests.support.gcp_catalog_server import (
    CatalogServer,
    TokenServer,
    google_error,
    service_account_key,
)
from tests.support.genai import ListLog, step_context
from warehouse.base import TableRef
from warehouse.duckdb import DuckDBWarehouse

DATA = Path(__file__).resolve().parents[4] / "data/cloud/gcp"
KEY = "AIzaSyUnit-test-catalog-key-abcdef0123"
COMPUTE, STORAGE, VERTEX = "6F81-5844-456A", "95FF-2EF5-5EA1", "C7E2-9256-1C43"
DAY = date(2026, 10, 1)


@pytest.fixture(scope="module")
def skus() -> dict[str, list[dict[str, Any]]]:
    return json.loads((DATA / "catalog_skus.json").read_text())


@pytest.fixture(scope="module")
def tokens() -> Iterator[TokenServer]:
    server = TokenServer("catalog-bearer-token")
    yield server
    server.close()


@pytest.fixture
def catalog(skus: dict[str, Any], tokens: TokenServer) -> Iterator[CatalogServer]:
    server = CatalogServer(skus, KEY, bearer_token=tokens.token, page_size=1)
    yield server
    server.close()


def run(
    tmp_path: Path, credential: dict[str, Any], config: dict[str, Any] | None = None
) -> tuple[DuckDBWarehouse, Any, ListLog]:
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    ctx = step_context(
        wh, config or {"service_ids": [COMPUTE, STORAGE]}, DAY, credential=credential
    )
    result = GcpApiExtractor().run(ctx)
    assert isinstance(ctx.log, ListLog)
    return wh, result, ctx.log


def prices_table_missing(tmp_path: Path) -> bool:
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    return wh.table_schema(TableRef("acme_dev", "gcp_sku_prices")) is None


def prices(wh: DuckDBWarehouse) -> list[dict[str, Any]]:
    return wh.query(
        "SELECT * FROM `acme_dev.gcp_sku_prices` ORDER BY sku_id, tier_start_amount"
    ).to_pylist()


def test_money_is_units_plus_nanos() -> None:
    assert unit_price({"units": "6", "nanos": 250000000}) == 6.25
    assert unit_price({"units": "0", "nanos": 31611000}) == pytest.approx(0.031611)
    assert unit_price({"units": "-1", "nanos": -500000000}) == -1.5
    assert unit_price({"nanos": 1}) == 1e-9 and unit_price({}) == 0.0


def test_the_current_pricing_info_gives_one_row_per_tier(skus: dict[str, Any]) -> None:
    rows = price_rows(iter(skus[STORAGE]), STORAGE, "EUR", DAY, None)
    assert [(r["tier_start_amount"], r["unit_price"]) for r in rows] == [
        (0.0, 0.026),
        (1024.0, 0.024),
    ]
    first = rows[0]
    # The 2026 pricingInfo wins over the 2025 one; its 9-digit fraction still parses.
    assert first["effective_time"] == datetime(2026, 9, 15, 8, 0, 0, 123456, tzinfo=UTC)
    assert first["effective_date"] == date(2026, 9, 15)
    assert (first["pricing_unit"], first["pricing_unit_description"]) == (
        "GiBy.mo",
        "gibibyte month",
    )
    assert (first["service_name"], first["resource_family"]) == ("Cloud Storage", "Storage")
    assert json.loads(first["service_regions"]) == ["us"]
    assert first["currency"] == "USD"  # as the API states it, not as asked
    only = price_rows(iter(skus[STORAGE]), STORAGE, "USD", DAY, {"nope"})
    assert only == []


def test_all_pages_are_read_with_the_key(tmp_path: Path, catalog: CatalogServer) -> None:
    credential = {"catalog_api_key": KEY, "catalog_base_url": catalog.url}
    wh, result, log = run(tmp_path, credential)
    compute = [r for r in catalog.requests if COMPUTE in r["path"]]
    assert len(compute) == 3  # three SKUs, one per page
    assert [r["query"].get("pageToken") is not None for r in compute] == [False, True, True]
    assert {r["query"]["currencyCode"] for r in catalog.requests} == {"USD"}
    assert {r["headers"]["x-goog-api-key"] for r in catalog.requests} == {KEY}
    rows = prices(wh)
    assert len(rows) == result.rows_written == 5  # 3 compute SKUs + 2 storage tiers
    assert {r["price_date"] for r in rows} == {DAY}
    core = next(r for r in rows if r["sku_id"] == "2E27-4F75-95CD")
    assert core["unit_price"] == pytest.approx(0.031611) and core["service_id"] == COMPUTE
    assert result.metrics == {"services": 2, "skipped_services": [], "skus": 4}
    assert any(
        "Catalog API at host 127.0.0.1 (credential catalog_base_url)" in m for _, m in log.lines
    )


def test_a_service_account_gets_a_bearer_token(
    tmp_path: Path, catalog: CatalogServer, tokens: TokenServer
) -> None:
    credential = service_account_key(
        tokens.token_uri,
        client_email="prices@acme.iam.gserviceaccount.com",
        catalog_base_url=catalog.url,
    )
    wh, _, _ = run(tmp_path, credential, {"service_ids": [STORAGE]})
    assert {r["headers"]["authorization"] for r in catalog.requests} == {
        "Bearer catalog-bearer-token"
    }
    assert tokens.assertions and len(prices(wh)) == 2


def test_an_unknown_service_is_skipped_with_a_warning(
    tmp_path: Path, catalog: CatalogServer
) -> None:
    credential = {"catalog_api_key": KEY, "catalog_base_url": catalog.url}
    wh, result, log = run(tmp_path, credential, {"service_ids": [VERTEX, STORAGE, "../x"]})
    assert result.metrics["skipped_services"] == [VERTEX, "../x"]
    assert ("WARNING", f"Catalog API does not know service {VERTEX}; skipped") in log.lines
    assert len(prices(wh)) == 2
    assert not any("../x" in r["path"] for r in catalog.requests)


def test_no_catalog_credential_writes_nothing(tmp_path: Path) -> None:
    _, result, log = run(tmp_path, {"api_endpoint": "http://127.0.0.1:9"})
    assert result.metrics == {"skipped": "no Catalog API credential"} and result.rows_written == 0
    assert any(level == "WARNING" and "ListCost falls back" in m for level, m in log.lines)
    assert prices_table_missing(tmp_path)


def test_throttling_is_transient_with_retry_after(tmp_path: Path, catalog: CatalogServer) -> None:
    catalog.faults.append(
        (429, {"Retry-After": "7"}, google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded"))
    )
    credential = {"catalog_api_key": KEY, "catalog_base_url": catalog.url}
    # An overridden endpoint's answer is never quoted: the status and a fixed message only.
    with pytest.raises(
        TransientError, match=r"^HTTP 429 from the endpoint in credential catalog_base_url$"
    ) as caught:
        run(tmp_path, credential)
    assert caught.value.retry_after == 7.0
    catalog.faults.append((503, {}, google_error(503, "UNAVAILABLE", "Backend unavailable")))
    with pytest.raises(TransientError, match="HTTP 503"):
        run(tmp_path, credential)
    assert prices_table_missing(tmp_path)


def test_a_rejected_key_is_terminal_and_not_quoted(tmp_path: Path, catalog: CatalogServer) -> None:
    wrong = "AIzaSyWrong-unit-key-0000000000000000"
    credential = {"catalog_api_key": wrong, "catalog_base_url": catalog.url}
    with pytest.raises(
        TerminalError, match=r"HTTP 401 from .*rejected the credential's catalog_api_key"
    ):
        run(tmp_path, credential)
    # What Google answers for a key it doesn't know: 400 API_KEY_INVALID, echoing nothing.
    invalid = google_error(400, "INVALID_ARGUMENT", f"API key not valid: {wrong}")
    invalid["error"]["details"] = [{"reason": "API_KEY_INVALID"}]
    catalog.faults.append((400, {}, invalid))
    with pytest.raises(TerminalError, match=r"HTTP 400 from .*catalog_api_key") as caught:
        run(tmp_path, credential)
    assert wrong not in str(caught.value) and "API key not valid" not in str(caught.value)
    assert prices_table_missing(tmp_path)


def test_a_bad_base_url_or_a_repeated_page_token_is_terminal(
    tmp_path: Path, catalog: CatalogServer
) -> None:
    with pytest.raises(TerminalError, match="catalog_base_url: must be an http"):
        run(tmp_path, {"catalog_api_key": KEY, "catalog_base_url": "ftp://127.0.0.1"})
    page = {"skus": [], "nextPageToken": "same"}
    catalog.faults += [(200, {}, page), (200, {}, page)]
    auth = ({"X-goog-api-key": KEY}, "key")
    with EgressClient("catalog", None) as client, pytest.raises(TerminalError, match="repeated"):
        list(list_skus(client, catalog.url, COMPUTE, "USD", auth, []) or [])
