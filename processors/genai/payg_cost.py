"""genai.payg_cost: usage x price into genai_payg_costs, one row per usage row and charge line.

Config:
  source_table: default genai_payg_usage_raw (rows this pipeline and credential extracted)
  provider_costs_table: default genai_payg_provider_costs
  destination_table: default genai_payg_costs
  price_overrides_file: optional CSV of negotiated rates (e.g. "pricing/{org_slug}.csv");
                        a missing file means no overrides for this org
  price_overrides_table: optional table of the same columns in the org dataset
  batch_discount: off list for batch rows when the library has no batch price (default 0.5)

Each row has list cost (genai-prices), effective cost (org overrides win), and the
provider-reported cost where the provider reports money: on the charge line the report
names (a token type, a web search), and only what the report does not break down shared
over the (day, project, model) rows by list cost (`cost_allocation` says which). A line
the library has no price for (an unknown model, or a token kind the model has no rate
for) and no override prices is kept with price_status 'unpriced' and null costs, counted
in the step metrics and logged: never priced as 0 in silence.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any, ClassVar

import pyarrow as pa

from processors.base import StepContext, StepResult, project_path
from processors.genai import pricing
from processors.genai.rows import PROVIDER_COSTS_TABLE, USAGE_TABLE
from processors.providers import load_registry
from warehouse.base import TableRef
from warehouse.schemas.genai import GENAI_COSTS

COSTS_TABLE = "genai_payg_costs"
COSTS_SCHEMA = GENAI_COSTS
_SLICE = (
    "WHERE x_org_slug = @org AND x_pipeline_id = @pipeline AND x_credential_id = @credential"
    " AND usage_date BETWEEN @start AND @end"
)


class PaygCostProcessor:
    ps_type: ClassVar[str] = "genai.payg_cost"

    def run(self, ctx: StepContext) -> StepResult:
        cfg = ctx.config
        pricing.refresh_prices(ctx.log)
        usage = self._read(ctx, str(cfg.get("source_table") or USAGE_TABLE))
        reported = self._read(ctx, str(cfg.get("provider_costs_table") or PROVIDER_COSTS_TABLE))
        overrides = self._overrides(ctx)
        batch_discount = Decimal(str(cfg.get("batch_discount", "0.5")))
        names = {k: p.display_name for k, p in load_registry().items()}
        rows: list[dict[str, Any]] = []
        unpriced: set[str] = set()
        unpriced_rows = 0
        for u in usage:
            priced = price_usage_row(u, overrides, batch_discount, names)
            rows.extend(priced)
            if any(r["price_status"] == "unpriced" for r in priced):
                unpriced_rows += 1
                unpriced.add(f"{u['provider']}/{u['model']}")
        unmatched = allocate_reported(rows, reported)
        if unpriced:
            ctx.log.warning(
                f"{unpriced_rows} usage rows have no price (kept as price_status='unpriced'): "
                + ", ".join(sorted(unpriced))
            )
        if unmatched:
            ctx.log.warning(f"provider-reported cost not matched to usage: {unmatched:.6f}")
        table = str(cfg.get("destination_table") or COSTS_TABLE)
        result = ctx.write(
            table, pa.Table.from_pylist(rows, schema=COSTS_SCHEMA), date_column="usage_date"
        )
        return StepResult(
            rows_written=result.rows_written,
            tables=[result.table],
            metrics={
                "usage_rows": len(usage),
                "unpriced_rows": unpriced_rows,
                "unpriced_models": sorted(unpriced),
                "override_rows": sum(1 for r in rows if r["price_status"] == "override"),
                "list_cost": round(sum(r["list_cost"] or 0 for r in rows), 6),
                "effective_cost": round(sum(r["effective_cost"] or 0 for r in rows), 6),
                "provider_cost_unmatched": round(unmatched, 6),
            },
        )

    def _read(self, ctx: StepContext, name: str) -> list[dict[str, Any]]:
        ref = ctx.table(name)
        if ctx.warehouse.table_schema(ref) is None:
            return []
        params = {
            "org": ctx.org_slug,
            "pipeline": ctx.pipeline_id,
            "credential": ctx.credential_id,
            "start": ctx.start_date,
            "end": ctx.end_date,
        }
        return ctx.warehouse.query(f"SELECT * FROM `{ref}` {_SLICE}", params).to_pylist()

    def _overrides(self, ctx: StepContext) -> list[pricing.Override]:
        found: list[pricing.Override] = []
        raw_path = ctx.config.get("price_overrides_file")
        if raw_path:
            path = project_path(str(raw_path))
            if path.is_file():
                found += pricing.read_override_file(path)
                ctx.log.info(f"{len(found)} price overrides from {path.name}")
            else:
                ctx.log.info(f"no price overrides file {raw_path} for this org")
        table = ctx.config.get("price_overrides_table")
        if table:
            ref: TableRef = ctx.table(str(table))
            if ctx.warehouse.table_schema(ref) is not None:
                records = ctx.warehouse.query(
                    f"SELECT * FROM `{ref}` WHERE x_org_slug = @org", {"org": ctx.org_slug}
                ).to_pylist()
                from_table = pricing.parse_overrides(records, str(ref))
                ctx.log.info(f"{len(from_table)} price overrides from {ref}")
                found += from_table
        return found


def price_usage_row(
    u: dict[str, Any],
    overrides: list[pricing.Override],
    batch_discount: Decimal,
    names: dict[str, str],
) -> list[dict[str, Any]]:
    """The charge lines of one usage row, each with list and effective cost."""
    provider, model, batch = u["provider"], u["model"], bool(u["batch"])
    price = pricing.list_price(
        provider,
        model,
        u["usage_date"],
        batch=batch,
        service_tier=u["service_tier"],
        context_window=u["context_window"],
        batch_discount=batch_discount,
    )
    override = pricing.best_override(overrides, provider, model)
    lines = pricing.split_lines(u) or ({"input": 0} if u["requests"] else {})
    rows = []
    for index, (charge, quantity) in enumerate(lines.items()):
        meter, unit = pricing.LINES[charge][:2]
        list_cost = price.cost(charge, quantity) if price else None
        effective = pricing.effective_cost(
            override, charge, quantity, list_cost, batch, batch_discount
        )
        if effective is None:
            status, source = "unpriced", None
        elif override is not None and effective is not list_cost:
            status, source = "override", f"override {override.provider}/{override.model}"
        else:
            status, source = "priced", price.basis if price else None
        rows.append(
            {
                "usage_date": u["usage_date"],
                "provider": provider,
                "provider_name": names.get(provider, provider),
                "model": model,
                "model_id": price.model_id if price else None,
                "project_or_workspace_id": u["project_or_workspace_id"],
                "api_key_id": u["api_key_id"],
                "service_tier": u["service_tier"],
                "context_window": u["context_window"],
                "batch": batch,
                "charge_type": charge,
                "sku_meter": meter,
                "quantity": quantity,
                "unit": unit,
                # Requests ride on the first line only, so summing them stays right.
                "requests": int(u["requests"] or 0) if index == 0 else 0,
                "list_unit_price": _per_unit(list_cost, quantity),
                "list_cost": _money(list_cost),
                "effective_unit_price": _per_unit(effective, quantity),
                "effective_cost": _money(effective),
                "provider_reported_cost": None,
                "price_status": status,
                "price_source": source,
                "currency": "USD",
                "cost_allocation": None,
            }
        )
    return rows


# What a provider's cost line names -> our charge type. Anthropic's cost_report says its
# token_type (or a cost_type such as web search); OpenAI's line items end in the kind.
REPORTED_TOKEN_TYPES = {
    "uncached_input_tokens": "input",
    "cache_read_input_tokens": "cached_input",
    "cache_creation.ephemeral_5m_input_tokens": "cache_write_5m",
    "cache_creation.ephemeral_1h_input_tokens": "cache_write_1h",
    "output_tokens": "output",
}
REPORTED_COST_TYPES = {"web_search": "web_search"}
REPORTED_LINE_ITEM_KINDS = {
    "input": "input",
    "cached input": "cached_input",
    "output": "output",
}


def reported_charge(cost: dict[str, Any]) -> str | None:
    """The charge line a reported cost names, or None if it names none we can tell."""
    token_type = cost.get("token_type")
    if token_type:
        return REPORTED_TOKEN_TYPES.get(str(token_type))
    cost_type = cost.get("cost_type")
    if cost_type in REPORTED_COST_TYPES:
        return REPORTED_COST_TYPES[str(cost_type)]
    line_item = cost.get("line_item") or ""
    if cost.get("provider") == "openai" and "," in line_item:
        return REPORTED_LINE_ITEM_KINDS.get(line_item.rsplit(",", 1)[1].strip().lower())
    return None


def allocate_reported(rows: list[dict[str, Any]], reported: list[dict[str, Any]]) -> float:
    """Put provider-reported money on the cost rows of its (day, project, model).

    Money the report puts on one charge line (a token type, a cost type, an OpenAI line
    item's kind) goes to that line only. The rest (a total, or a kind we have no line for)
    is shared over the group's rows by list cost (quantity where nothing is priced).
    `cost_allocation` says which happened. Returns the amount that matched no usage, e.g.
    a line item that names no model.
    """
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[_group(row)].append(row)
    shared: dict[tuple[Any, ...], float] = defaultdict(float)
    by_charge: dict[tuple[Any, ...], float] = defaultdict(float)
    unmatched = 0.0
    for cost in reported:
        key = _group(cost)
        amount = float(cost["amount"] or 0)
        if key not in groups or (cost["currency"] or "USD") != "USD":
            unmatched += amount
            continue
        charge = reported_charge(cost)
        if charge is not None and any(r["charge_type"] == charge for r in groups[key]):
            by_charge[(*key, charge)] += amount
        else:
            shared[key] += amount
    for (*key, charge), amount in by_charge.items():
        members = [r for r in groups[tuple(key)] if r["charge_type"] == charge]
        _spread(members, amount, "report")
    for key, amount in shared.items():
        _spread(groups[key], amount, "shared")
    return unmatched


def _spread(members: list[dict[str, Any]], amount: float, how: str) -> None:
    weights = [r["list_cost"] or 0.0 for r in members]
    if not any(weights):
        weights = [float(r["quantity"]) for r in members]
    if not any(weights):
        weights = [1.0] * len(members)
    total = sum(weights)
    for row, weight in zip(members, weights, strict=True):
        before = row["provider_reported_cost"]
        row["provider_reported_cost"] = (before or 0.0) + amount * weight / total
        row["cost_allocation"] = how if before is None else f"{row['cost_allocation']}+{how}"


def _group(row: dict[str, Any]) -> tuple[Any, ...]:
    model = (row.get("model") or "").lower() or None
    return (row["usage_date"], row.get("project_or_workspace_id"), model)


def _money(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _per_unit(cost: Decimal | None, quantity: int) -> float | None:
    if cost is None:
        return None
    return float(cost / quantity) if quantity else 0.0
