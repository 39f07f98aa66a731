"""cloud.gcp_sku_prices: Cloud Billing Catalog list prices of the SKUs an org used.

`GET {base}/v1/services/{service_id}/skus?currencyCode=..&pageToken=..` for every service
in the run's billing export rows (or config `service_ids`), following nextPageToken. Each
SKU's current pricingInfo becomes one row per price tier in `gcp_sku_prices` (replace for
the run; `price_date` = the run's start date). sp_focus_gcp prices ListCost with the tier
starting at 0 when the export row has no cost_at_list.

Config:
  source_table: default gcp_billing_export_raw
  destination_table: default gcp_sku_prices
  service_ids: optional list; then every SKU of those services is kept (else only the
      SKUs the export rows used, so a daily snapshot stays small)
  currency: with service_ids, the currency to ask for (default USD); otherwise each
      service is priced in the currency its export rows are billed in
  timeout_seconds: per request, default 30

Credential: `catalog_api_key` (sent as the X-goog-api-key header) or else the service-account
key (an OAuth bearer token); `catalog_base_url` (http(s)) overrides the API's address. With
neither, the step logs a warning and writes nothing: ListCost then falls back to cost.
Errors: 429 and 5xx are TransientError (Retry-After honoured), 401/403 and a rejected key
TerminalError; a service the catalog doesn't know (404; marketplace services) is skipped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

import httpx
import pyarrow as pa

from pipeline_ops_core.egress import EgressClient, page_tokens, split_url
from pipeline_ops_core.errors import TerminalError, TransientError
from processors.base import StepContext, StepResult
from processors.cloud.gcp.billing_export import (
    GOOGLE_API_HOSTS,
    RAW_TABLE,
    TOKEN_HOSTS,
    check_token_uri,
    checked_url,
    secrets_of,
    service_account_info,
)
from processors.generic.http_extract import error_excerpt, mask_secrets, retry_after_seconds
from processors.sdk_egress import guarded
from warehouse.schemas.gcp import GCP_SKU_PRICES

PRICES_TABLE = "gcp_sku_prices"
DEFAULT_BASE_URL = "https://cloudbilling.googleapis.com"
CATALOG_SCOPE = "https://www.googleapis.com/auth/cloud-billing.readonly"
PAGE_SIZE = 5000
_SERVICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}\Z")
_NANOS = Decimal(10) ** 9


# -- auth ----------------------------------------------------------------------------------------


def auth_headers(credential: Mapping[str, Any]) -> tuple[dict[str, str], str] | None:
    """(headers, what) for the Catalog API, or None when the credential has no way in."""
    key = credential.get("catalog_api_key")
    if isinstance(key, str) and key.strip():
        return {"X-goog-api-key": key.strip()}, "catalog_api_key"
    info = service_account_info(credential)
    if info is None:
        return None
    return {"Authorization": f"Bearer {_access_token(info)}"}, "service account"


def _access_token(info: Mapping[str, Any]) -> str:
    """An OAuth token for the key, from its token_uri (egress-checked). Errors never quote
    the key, nor what the token endpoint answered."""
    import google.auth.transport.requests
    from google.auth import exceptions as auth_exc

    from warehouse.bigquery import service_account_credentials

    check_token_uri(info)
    creds = service_account_credentials(info).with_scopes([CATALOG_SCOPE])
    who = info.get("client_email")
    try:
        with guarded("credential token_uri", TOKEN_HOSTS):
            creds.refresh(google.auth.transport.requests.Request())
    except auth_exc.TransportError:
        raise TransientError(f"could not reach the token endpoint (token_uri) for {who}") from None
    except auth_exc.GoogleAuthError:
        raise TerminalError(
            f"{who} could not get a Catalog API token: the token endpoint (token_uri) refused "
            "the key or answered without a token"
        ) from None
    return str(creds.token)


# -- the API -------------------------------------------------------------------------------------


def get_page(
    client: EgressClient,
    url: str,
    params: list[tuple[str, str]],
    headers: dict[str, str],
    secrets: list[str],
    what: str,
) -> dict[str, Any] | None:
    """One page as JSON; None when the service is unknown (404)."""
    shown = url if client.echo else f"the endpoint in {client.where}"
    try:
        response = client.get(url, params=params, headers=headers)
    except httpx.TimeoutException:
        raise TransientError(f"timeout after {client.timeout}s calling {shown}") from None
    except httpx.TransportError as exc:
        raise TransientError(f"connection error calling {shown}: {type(exc).__name__}") from None
    status = response.status_code
    excerpt = mask_secrets(error_excerpt(response, headers), secrets) if client.echo else ""
    if status == 404:
        return None
    if status == 429 or status >= 500:
        raise TransientError(
            f"HTTP {status} from {shown}{excerpt}", retry_after=retry_after_seconds(response)
        )
    if status in (401, 403) or (status == 400 and "API_KEY_INVALID" in response.text):
        raise TerminalError(
            f"HTTP {status} from {shown}: Cloud Billing Catalog API rejected the credential's "
            f"{what}{excerpt}"
        )
    if status >= 300:
        raise TerminalError(f"HTTP {status} from {shown}{excerpt}")
    try:
        payload = response.json()
    except ValueError:
        raise TerminalError(f"response from {shown} is not JSON") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("skus", []), list):
        raise TerminalError(f"unexpected response from {shown}: no `skus` list")
    return payload


def list_skus(
    client: EgressClient,
    base: str,
    service_id: str,
    currency: str,
    auth: tuple[dict[str, str], str],
    secrets: list[str],
) -> Iterator[dict[str, Any]] | None:
    """Every SKU of the service (all pages read first), or None for an unknown service."""
    url = f"{base}/v1/services/{service_id}/skus"
    headers, what = auth
    skus: list[dict[str, Any]] = []
    token = ""
    next_page = page_tokens(client.limits, url)
    while True:
        params = [("currencyCode", currency), ("pageSize", str(PAGE_SIZE))]
        params += [("pageToken", token)] if token else []
        page = get_page(client, url, params, headers, secrets, what)
        if page is None:
            return None
        skus += [s for s in page.get("skus", []) if isinstance(s, dict)]
        token = str(page.get("nextPageToken") or "")
        if not next_page(token):
            return iter(skus)


# -- rows --------------------------------------------------------------------------------------


def unit_price(money: Mapping[str, Any]) -> float:
    """google.type.Money {units (int64 as text), nanos} as a number."""
    units = Decimal(str(money.get("units") or 0))
    nanos = Decimal(int(money.get("nanos") or 0)) / _NANOS
    return float(units + nanos)


def price_rows(
    skus: Iterator[dict[str, Any]],
    service_id: str,
    currency: str,
    price_date: Any,
    only: set[str] | None,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for sku in skus:
        sku_id = sku.get("skuId")
        if not isinstance(sku_id, str) or (only is not None and sku_id not in only):
            continue
        info = _current_pricing(sku.get("pricingInfo") or [])
        expr = info.get("pricingExpression") or {}
        category = sku.get("category") or {}
        effective = _timestamp(info.get("effectiveTime"))
        common = {
            "price_date": price_date,
            "service_id": service_id,
            "service_name": category.get("serviceDisplayName"),
            "sku_id": sku_id,
            "sku_name": sku.get("name"),
            "description": sku.get("description"),
            "resource_family": category.get("resourceFamily"),
            "resource_group": category.get("resourceGroup"),
            "usage_type": category.get("usageType"),
            "service_regions": json.dumps(sku.get("serviceRegions") or []),
            "pricing_unit": expr.get("usageUnit"),
            "pricing_unit_description": expr.get("usageUnitDescription"),
            "base_unit": expr.get("baseUnit"),
            "base_unit_conversion_factor": _float(expr.get("baseUnitConversionFactor")),
            "effective_time": effective,
            "effective_date": effective.date() if effective else None,
        }
        for tier in expr.get("tieredRates") or []:
            money = tier.get("unitPrice") or {}
            rows.append(
                {
                    **common,
                    "tier_start_amount": _float(tier.get("startUsageAmount")) or 0.0,
                    "unit_price": unit_price(money),
                    "currency": money.get("currencyCode") or currency,
                }
            )
    return rows


def _current_pricing(infos: Sequence[Any]) -> dict[str, Any]:
    """The pricingInfo in force now: the one with the latest effectiveTime."""
    dicts = [i for i in infos if isinstance(i, dict)]
    if not dicts:
        return {}
    epoch = datetime.min.replace(tzinfo=UTC)
    return max(dicts, key=lambda i: _timestamp(i.get("effectiveTime")) or epoch)


def _timestamp(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    # RFC 3339 with up to nanoseconds; Python parses at most microseconds.
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.replace("Z", "+00:00"))
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _float(value: object) -> float | None:
    try:
        return None if value is None else float(str(value))
    except ValueError:
        return None


# -- the processor -----------------------------------------------------------------------------


def services_in_export(ctx: StepContext, source: str) -> list[tuple[str, str, set[str]]]:
    """(service_id, currency, sku ids) billed in the org's export rows for the run's dates."""
    ref = ctx.table(source)
    if ctx.warehouse.table_schema(ref) is None:
        ctx.log.warning(f"{ref} does not exist: no services to price")
        return []
    found = ctx.warehouse.query(
        f"SELECT DISTINCT service_id, currency, sku_id FROM `{ref}`"
        " WHERE x_org_slug = @org AND usage_date BETWEEN @start AND @end"
        " AND record_type = 'charge' AND service_id IS NOT NULL AND sku_id IS NOT NULL",
        {"org": ctx.org_slug, "start": ctx.start_date, "end": ctx.end_date},
    ).to_pylist()
    services: dict[tuple[str, str], set[str]] = {}
    for row in found:
        key = (str(row["service_id"]), str(row["currency"] or "USD"))
        services.setdefault(key, set()).add(str(row["sku_id"]))
    return [(sid, cur, skus) for (sid, cur), skus in sorted(services.items())]


def configured_services(ctx: StepContext) -> list[tuple[str, str, set[str] | None]] | None:
    ids = ctx.config.get("service_ids")
    if ids is None:
        return None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise TerminalError("service_ids must be a list of Cloud Billing service ids")
    currency = str(ctx.config.get("currency") or "USD")
    return [(sid, currency, None) for sid in ids]


class GcpApiExtractor:
    ps_type: ClassVar[str] = "cloud.gcp_sku_prices"

    def run(self, ctx: StepContext) -> StepResult:
        credential = ctx.credential()
        secrets = secrets_of(credential)
        override = credential.get("catalog_base_url")
        base = checked_url(override or DEFAULT_BASE_URL, "catalog_base_url", GOOGLE_API_HOSTS)
        if override:
            host = split_url(base, "credential catalog_base_url")[1]
            ctx.log.info(f"Cloud Billing Catalog API at host {host} (credential catalog_base_url)")
        where = "credential catalog_base_url" if override else "the Cloud Billing Catalog API"
        timeout = float(ctx.config.get("timeout_seconds", 30))
        destination = str(ctx.config.get("destination_table") or PRICES_TABLE)
        services: list[tuple[str, str, set[str] | None]] = configured_services(ctx) or []
        if ctx.config.get("service_ids") is None:
            source = str(ctx.config.get("source_table") or RAW_TABLE)
            services = list(services_in_export(ctx, source))
        auth = auth_headers(credential) if services else None
        if services and auth is None:
            ctx.log.warning(
                "credential has no catalog_api_key or service-account key: list prices not "
                "read; ListCost falls back to the export's cost"
            )
            return StepResult(metrics={"skipped": "no Catalog API credential"})
        rows: list[dict[str, Any]] = []
        skipped: list[str] = []
        client = EgressClient(where, GOOGLE_API_HOSTS, timeout=timeout, echo=not override)
        with client:
            rows = self._prices(ctx, client, base, services, auth, secrets, skipped)
        table = pa.Table.from_pylist(rows, schema=GCP_SKU_PRICES)
        written = ctx.write(destination, table, date_column="price_date")
        return StepResult(
            rows_written=written.rows_written,
            tables=[written.table],
            metrics={
                "services": len(services) - len(skipped),
                "skipped_services": skipped,
                "skus": len({r["sku_id"] for r in rows}),
            },
        )

    def _prices(
        self,
        ctx: StepContext,
        client: EgressClient,
        base: str,
        services: list[tuple[str, str, set[str] | None]],
        auth: tuple[dict[str, str], str] | None,
        secrets: list[str],
        skipped: list[str],
    ) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for service_id, currency, only in services:
            if not _SERVICE_ID.match(service_id):
                ctx.log.warning(f"service id {service_id!r} is not a catalog id; skipped")
                skipped.append(service_id)
                continue
            assert auth is not None
            skus = list_skus(client, base, service_id, currency, auth, secrets)
            if skus is None:
                ctx.log.warning(f"Catalog API does not know service {service_id}; skipped")
                skipped.append(service_id)
                continue
            priced = price_rows(skus, service_id, currency, ctx.start_date, only)
            ctx.log.info(f"service {service_id} ({currency}): {len(priced)} price tiers")
            rows += priced
        return rows
