"""Prices for GenAI usage: the genai-prices library, overridden by an org's negotiated rates.

Usage rows are daily sums, so each one is split into charge lines (uncached input, cached
input, 5m and 1h cache writes, output, web searches) and every line is priced on its own:
one quantity, one rate. That keeps ListCost = ListUnitPrice x PricingQuantity true in FOCUS.

- The library picks the model (its match rules), the price in force on the usage day
  (noon UTC: daily sums can't say the hour) and request variants (batch, service tier).
- Tiers: the library's cliff tiers depend on one request's input size, which a daily sum
  does not have. Anthropic reports the tier per row (context_window "200k-1M"); that picks
  the top tier, anything else the base price.
- Batch: a batch variant in force in the library wins; else `batch_discount` (the
  providers' published 50% by default) comes off the standard price.
- Price data: the library's bundled snapshot, or (PIPELINE_OPS_PRICES_UPDATE=1) the
  latest one fetched with the library's updater through the egress policy, at most once
  per PIPELINE_OPS_PRICES_UPDATE_INTERVAL seconds; a failed fetch keeps what is in use.
  `price_source()` names the data that priced a row, stored with it.
"""

from __future__ import annotations

import csv
import os
import time as clock
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
from genai_prices import Usage, data_snapshot
from genai_prices.types import ModelInfo, ModelPrice, TieredPrices, _providers_from_raw
from genai_prices.update_prices import DEFAULT_UPDATE_URL, UpdatePrices

from pipeline_ops_core.egress import EgressClient, split_url
from pipeline_ops_core.errors import PipelineOpsError, TerminalError

# Our provider keys -> genai-prices provider ids.
PRICE_PROVIDER = {"openai": "openai", "anthropic": "anthropic", "gemini": "google"}
LIBRARY = f"genai-prices {version('genai-prices')}"
BUNDLED = f"{LIBRARY} (bundled data)"
UPDATE_ENV = "PIPELINE_OPS_PRICES_UPDATE"
UPDATE_URL_ENV = "PIPELINE_OPS_PRICES_URL"
UPDATE_INTERVAL_ENV = "PIPELINE_OPS_PRICES_UPDATE_INTERVAL"


class _Data:
    """Which price data is in use, and when an update was last tried (per process)."""

    source = BUNDLED
    tried_at: float | None = None


def price_source() -> str:
    """The price data in use, as recorded on each priced row (x_price_source)."""
    return _Data.source


class EgressUpdatePrices(UpdatePrices):
    """genai-prices' updater, fetching through the egress policy and the HTTP caps."""

    def fetch(self) -> data_snapshot.DataSnapshot | None:
        with EgressClient(UPDATE_URL_ENV, None, timeout=15) as client:
            answer = client.get(self.url)
        if answer.status_code != 200:
            raise TerminalError(f"price data answered HTTP {answer.status_code}")
        raw = answer.json()
        if not isinstance(raw, list):
            raise TerminalError("price data is not a list of providers")
        return data_snapshot.DataSnapshot(_providers_from_raw(raw), from_auto_update=True)


def refresh_prices(log: Any = None, env: Mapping[str, str] | None = None) -> str:
    """With PIPELINE_OPS_PRICES_UPDATE=1, fetch the latest price data (at most once per
    interval); offline or refused, keep what is in use. Returns price_source()."""
    env = os.environ if env is None else env
    if env.get(UPDATE_ENV, "") != "1":
        return price_source()
    interval = float(env.get(UPDATE_INTERVAL_ENV) or 3600)
    now = clock.monotonic()
    if _Data.tried_at is not None and now - _Data.tried_at < interval:
        return price_source()
    _Data.tried_at = now
    url = env.get(UPDATE_URL_ENV) or DEFAULT_UPDATE_URL
    try:
        snapshot = EgressUpdatePrices(url=url).fetch()
    except (PipelineOpsError, OSError, ValueError, httpx.HTTPError) as exc:
        if log is not None:
            log.warning(f"price data update failed ({exc}); pricing with {price_source()}")
        return price_source()
    data_snapshot.set_custom_snapshot(snapshot)
    _find.cache_clear()
    host = split_url(url, UPDATE_URL_ENV)[1]
    fetched = clock.strftime("%Y-%m-%dT%H:%MZ", clock.gmtime())
    _Data.source = f"{LIBRARY} updater, data from {host} fetched {fetched}"
    if log is not None:
        log.info(f"price data updated: {_Data.source}")
    return _Data.source


def use_bundled_prices() -> None:
    """Back to the bundled snapshot (tests, and an operator turning updates off)."""
    data_snapshot.set_custom_snapshot(None)
    _find.cache_clear()
    _Data.source, _Data.tried_at = BUNDLED, None


# charge_type -> (FOCUS SkuMeter, unit, usage the library prices, override column, per,
# price keys of which the model must have one for the line to be priced). The lines that
# predate the library's modality prices keep its fallbacks (no keys); a modality or a
# TTL-less cache write is priced only at its own rate: the library would otherwise price
# it as text input, folding one token kind into another.
LINES: dict[str, tuple[str, str, Any, str, int, tuple[str, ...]]] = {
    "input": ("Input Tokens", "Tokens", lambda q: Usage(input_tokens=q), "input_mtok", 10**6, ()),
    "cached_input": (
        "Cached Input Tokens",
        "Tokens",
        lambda q: Usage(input_tokens=q, cache_read_tokens=q),
        "cached_input_mtok",
        10**6,
        (),
    ),
    "cache_write": (
        "Cache Write Tokens",
        "Tokens",
        lambda q: Usage(input_tokens=q, cache_write_tokens=q),
        "cache_write_mtok",
        10**6,
        ("cache_write_mtok",),
    ),
    "cache_write_5m": (
        "Cache Write Tokens (5m)",
        "Tokens",
        lambda q: Usage(input_tokens=q, cache_write_tokens=q),
        "cache_write_5m_mtok",
        10**6,
        (),
    ),
    "cache_write_1h": (
        "Cache Write Tokens (1h)",
        "Tokens",
        lambda q: Usage(input_tokens=q, cache_write_tokens=q, cache_write_1h_tokens=q),
        "cache_write_1h_mtok",
        10**6,
        (),
    ),
    "input_audio": (
        "Audio Input Tokens",
        "Tokens",
        lambda q: Usage(input_tokens=q, input_audio_tokens=q),
        "input_audio_mtok",
        10**6,
        ("input_audio_mtok",),
    ),
    "cached_input_audio": (
        "Cached Audio Input Tokens",
        "Tokens",
        lambda q: Usage(
            input_tokens=q, cache_read_tokens=q, input_audio_tokens=q, cache_audio_read_tokens=q
        ),
        "cached_input_audio_mtok",
        10**6,
        ("cache_audio_read_mtok",),
    ),
    "input_image": (
        "Image Input Tokens",
        "Tokens",
        lambda q: Usage(input_tokens=q, input_image_tokens=q),
        "input_image_mtok",
        10**6,
        ("input_image_mtok",),
    ),
    "cached_input_image": (
        "Cached Image Input Tokens",
        "Tokens",
        lambda q: Usage(
            input_tokens=q, cache_read_tokens=q, input_image_tokens=q, cache_image_read_tokens=q
        ),
        "cached_input_image_mtok",
        10**6,
        ("cache_image_read_mtok",),
    ),
    "output": (
        "Output Tokens",
        "Tokens",
        lambda q: Usage(output_tokens=q),
        "output_mtok",
        10**6,
        (),
    ),
    "output_audio": (
        "Audio Output Tokens",
        "Tokens",
        lambda q: Usage(output_tokens=q, output_audio_tokens=q),
        "output_audio_mtok",
        10**6,
        ("output_audio_mtok",),
    ),
    "output_image": (
        "Image Output Tokens",
        "Tokens",
        lambda q: Usage(output_tokens=q, output_image_tokens=q),
        "output_image_mtok",
        10**6,
        ("output_image_mtok",),
    ),
    "web_search": (
        "Web Search Requests",
        "Requests",
        lambda q: Usage(web_searches=q),
        "web_search_kcount",
        10**3,
        (),
    ),
}
OVERRIDE_COLUMNS = ("provider", "model", *(spec[3] for spec in LINES.values()))
OVERRIDE_EXTRA = ("discount_pct", "batch_discount")


def split_lines(row: Mapping[str, Any]) -> dict[str, int]:
    """A raw usage row's quantity per charge type (only the non-zero ones).

    Every reported token is on exactly one line: the text lines get what is left once the
    cache writes and the audio and image tokens (each cached or not) are taken out.
    """
    n = {name: int(row.get(name) or 0) for name in _TOKEN_NAMES}
    write_1h = n["cache_write_1h_tokens"]
    write_5m = n["cache_write_5m_tokens"]
    # A write total with no TTL split (OpenAI's input_cache_write_tokens) is its own line.
    write_other = max(n["cache_write_tokens"] - write_5m - write_1h, 0)
    cached_audio, cached_image = n["cached_input_audio_tokens"], n["cached_input_image_tokens"]
    audio = max(n["input_audio_tokens"] - cached_audio, 0)
    image = max(n["input_image_tokens"] - cached_image, 0)
    cached = max(n["cached_input_tokens"] - cached_audio - cached_image, 0)
    taken = n["cached_input_tokens"] + write_5m + write_1h + write_other + audio + image
    quantities = {
        "input": max(n["input_tokens"] - taken, 0),
        "cached_input": cached,
        "cache_write": write_other,
        "cache_write_5m": write_5m,
        "cache_write_1h": write_1h,
        "input_audio": audio,
        "cached_input_audio": cached_audio,
        "input_image": image,
        "cached_input_image": cached_image,
        "output": max(n["output_tokens"] - n["output_audio_tokens"] - n["output_image_tokens"], 0),
        "output_audio": n["output_audio_tokens"],
        "output_image": n["output_image_tokens"],
        "web_search": n["web_search_requests"],
    }
    return {k: v for k, v in quantities.items() if v > 0}


_TOKEN_NAMES = (
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "input_audio_tokens",
    "cached_input_audio_tokens",
    "input_image_tokens",
    "cached_input_image_tokens",
    "output_tokens",
    "output_audio_tokens",
    "output_image_tokens",
    "web_search_requests",
)


@dataclass(frozen=True)
class ListPrice:
    model_id: str
    price: ModelPrice
    factor: Decimal  # 1, or 1 - batch_discount when the library has no batch price
    basis: str

    def cost(self, charge_type: str, quantity: int) -> Decimal | None:
        """The line's list cost, or None when the model has no rate for this kind."""
        _, _, usage_of, _, _, needs = LINES[charge_type]
        if needs and all(getattr(self.price, key, None) is None for key in needs):
            return None
        return self.price.calc_price(usage_of(quantity))["total_price"] * self.factor


@lru_cache(maxsize=4096)
def _find(provider: str, model: str) -> ModelInfo | None:
    try:
        _, info = data_snapshot.get_snapshot().find_provider_model(
            model, None, PRICE_PROVIDER.get(provider, provider), None
        )
    except LookupError:
        return None
    return info


def is_known(provider: str, model: str | None) -> bool:
    """Whether the price data in use has the model (its own rate lines aside)."""
    return bool(model) and _find(provider, str(model)) is not None


def _flatten(price: ModelPrice, long_context: bool) -> ModelPrice:
    flat: dict[str, Decimal] = {}
    for key, value in vars(price).items():
        if isinstance(value, TieredPrices):
            value = value.tiers[-1].price if long_context and value.tiers else value.base
        if value is not None and not key.startswith("_"):
            flat[key] = value
    return ModelPrice(**flat)


def list_price(
    provider: str,
    model: str | None,
    day: date,
    *,
    batch: bool,
    service_tier: str | None,
    context_window: str | None,
    batch_discount: Decimal,
) -> ListPrice | None:
    """The library's price for one usage row, or None if it doesn't know the model."""
    info = _find(provider, model) if model else None
    if info is None:
        return None
    at = datetime.combine(day, time(12), tzinfo=UTC)
    variants = [
        v for v in info.price_variants or () if v.constraint is None or v.constraint.active(at)
    ]
    context: dict[str, str] = {}
    has_batch = any(v.when == {"processing": "batch"} for v in variants)
    if batch and has_batch:
        context["processing"] = "batch"
    if service_tier and any(v.when == {"service_tier": service_tier} for v in variants):
        context["service_tier"] = service_tier
    price = info.get_prices(at, context or None)
    long_context = bool(context_window) and not str(context_window).startswith("0-")
    factor, basis = Decimal(1), price_source()
    if batch and not has_batch:
        factor, basis = Decimal(1) - batch_discount, f"{basis}, batch -{batch_discount:%}"
    return ListPrice(info.id, _flatten(price, long_context), factor, basis)


@dataclass(frozen=True)
class Override:
    """One negotiated rate row: explicit prices per line, and/or a discount off list."""

    provider: str
    model: str  # exact, or a prefix ending in *
    prices: dict[str, Decimal] = field(default_factory=dict)  # charge_type -> rate per `per`
    discount_pct: Decimal | None = None
    batch_discount: Decimal | None = None

    def matches(self, provider: str, model: str | None) -> bool:
        if provider != self.provider or not model:
            return False
        if self.model.endswith("*"):
            return model.lower().startswith(self.model[:-1])
        return model.lower() == self.model


def parse_overrides(records: list[Mapping[str, Any]], source: str) -> list[Override]:
    by_column = {spec[3]: charge for charge, spec in LINES.items()}
    found: list[Override] = []
    for number, record in enumerate(records, 1):
        unknown = {k for k in record if k not in (*OVERRIDE_COLUMNS, *OVERRIDE_EXTRA)}
        unknown -= {k for k in record if str(k).startswith("x_")}  # lineage of a table
        if unknown:
            raise TerminalError(f"{source} row {number}: unknown column(s) {sorted(unknown)}")
        if not record.get("provider") or not record.get("model"):
            raise TerminalError(f"{source} row {number}: provider and model are required")
        try:
            prices = {
                by_column[c]: Decimal(str(record[c]))
                for c in by_column
                if record.get(c) not in (None, "")
            }
            extra = {
                c: Decimal(str(record[c])) if record.get(c) not in (None, "") else None
                for c in OVERRIDE_EXTRA
            }
        except InvalidOperation:
            raise TerminalError(f"{source} row {number}: prices must be numbers") from None
        found.append(
            Override(
                str(record["provider"]).lower(),
                str(record["model"]).lower(),
                prices,
                extra["discount_pct"],
                extra["batch_discount"],
            )
        )
    return found


def read_override_file(path: Path) -> list[Override]:
    with path.open(newline="", encoding="utf-8") as handle:
        return parse_overrides(list(csv.DictReader(handle)), path.name)


def best_override(overrides: list[Override], provider: str, model: str | None) -> Override | None:
    """Exact match first, then the longest matching prefix."""
    hits = [o for o in overrides if o.matches(provider, model)]
    if not hits:
        return None
    return max(hits, key=lambda o: (not o.model.endswith("*"), len(o.model)))


def effective_cost(
    override: Override | None,
    charge_type: str,
    quantity: int,
    list_cost: Decimal | None,
    batch: bool,
    batch_discount: Decimal,
) -> Decimal | None:
    """The org's cost of one line: an explicit negotiated rate, a discount off list, or list."""
    if override is not None and charge_type in override.prices:
        per = LINES[charge_type][4]
        cost = override.prices[charge_type] * quantity / per
        if batch:
            cost *= Decimal(1) - (override.batch_discount or batch_discount)
        return cost
    if override is not None and override.discount_pct is not None and list_cost is not None:
        return list_cost * (Decimal(1) - override.discount_pct / 100)
    return list_cost
