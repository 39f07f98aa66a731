"""subscription.amortize: per-org SaaS subscriptions into daily amortized cost rows.

Config:
  destination_table: default subscription_costs_daily
  default_service_category / default_service_subcategory: FOCUS category of a
      subscription (default 'AI and Machine Learning' / 'Generative AI')
  service_categories: {provider: [category, subcategory]} for other SaaS (e.g. slack:
      [Business Applications, Productivity and Collaboration])

Subscriptions come from `ctx.readers["subscriptions"]` (a SubscriptionReader; see
base.py): processors can't reach the metadata DB themselves.

Billing cycles are anchored on start_date (a 31st anchors to each month's last day when
shorter). A cycle's amount is seats x unit_price; each day carries amount / cycle days
(the amortized, effective cost) and the cycle's first day also carries the invoice (the
billed cost). A subscription that ends inside a cycle is billed pro rata for the days it
covers, so billed and amortized totals agree.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, ClassVar

import pyarrow as pa

from pipeline_ops_core.errors import TerminalError
from processors.base import StepContext, StepResult
from processors.providers import load_registry
from processors.subscription.base import READER_KEY, Subscription, SubscriptionReader
from warehouse.focus_values import check_service_category
from warehouse.schemas.genai import SUBSCRIPTION_COSTS_DAILY

TABLE = "subscription_costs_daily"
CYCLE_MONTHS = {"monthly": 1, "quarterly": 3, "annual": 12}
DEFAULT_CATEGORY = ("AI and Machine Learning", "Generative AI")


def add_months(anchor: date, months: int) -> date:
    """`anchor` moved by whole months, its day clamped to the target month's length."""
    index = anchor.month - 1 + months
    year, month = anchor.year + index // 12, index % 12 + 1
    return date(year, month, min(anchor.day, calendar.monthrange(year, month)[1]))


def cycle_of(sub: Subscription, day: date) -> tuple[date, date]:
    """[start, end) of the billing cycle that holds `day`."""
    step = CYCLE_MONTHS[sub.billing_cycle]
    n = ((day.year - sub.start_date.year) * 12 + day.month - sub.start_date.month) // step
    while add_months(sub.start_date, n * step) > day:
        n -= 1
    while add_months(sub.start_date, (n + 1) * step) <= day:
        n += 1
    return add_months(sub.start_date, n * step), add_months(sub.start_date, (n + 1) * step)


def daily_rows(
    sub: Subscription, start: date, end: date, provider_name: str, category: tuple[str, str]
) -> list[dict[str, Any]]:
    if sub.billing_cycle not in CYCLE_MONTHS:
        raise TerminalError(f"{sub.subscription_id}: unknown billing_cycle {sub.billing_cycle!r}")
    first = max(start, sub.start_date)
    last = min(end, sub.end_date) if sub.end_date else end
    amount = sub.unit_price * sub.seats
    rows = []
    day = first
    while day <= last:
        cycle_start, cycle_end = cycle_of(sub, day)
        days = (cycle_end - cycle_start).days
        covered_end = (
            min(cycle_end, sub.end_date + timedelta(days=1)) if sub.end_date else cycle_end
        )
        billed = amount * (covered_end - cycle_start).days / days if day == cycle_start else 0
        seat_day = sub.unit_price / days
        rows.append(
            {
                "cost_date": day,
                "subscription_id": sub.subscription_id,
                "provider": sub.provider,
                "provider_name": provider_name,
                "plan": sub.plan,
                "seats": sub.seats,
                "unit_price": float(sub.unit_price),
                "billing_cycle": sub.billing_cycle,
                "currency": sub.currency,
                "period_start": cycle_start,
                "period_end": cycle_end,
                "period_days": days,
                "seat_day_price": float(seat_day),
                "daily_cost": float(seat_day * sub.seats),
                "billed_cost": float(Decimal(billed)),
                "service_category": category[0],
                "service_subcategory": category[1],
            }
        )
        day += timedelta(days=1)
    return rows


class SubscriptionAmortizeProcessor:
    ps_type: ClassVar[str] = "subscription.amortize"

    def run(self, ctx: StepContext) -> StepResult:
        reader: SubscriptionReader | None = ctx.readers.get(READER_KEY)
        if reader is None:
            raise TerminalError("no subscription reader: the engine provides ctx.readers")
        categories = self._categories(ctx)
        names = {k: p.display_name for k, p in load_registry().items()}
        subs = reader.subscriptions(ctx.org_slug, ctx.start_date, ctx.end_date)
        rows: list[dict[str, Any]] = []
        for sub in subs:
            name = names.get(sub.provider) or sub.provider.replace("_", " ").title()
            category = categories.get(sub.provider, categories["*"])
            rows += daily_rows(sub, ctx.start_date, ctx.end_date, name, category)
        ctx.log.info(f"{len(subs)} subscriptions -> {len(rows)} daily cost rows")
        table = str(ctx.config.get("destination_table") or TABLE)
        result = ctx.write(
            table,
            pa.Table.from_pylist(rows, schema=SUBSCRIPTION_COSTS_DAILY),
            date_column="cost_date",
        )
        return StepResult(
            rows_written=result.rows_written,
            tables=[result.table],
            metrics={
                "subscriptions": len(subs),
                "amortized_cost": round(sum(r["daily_cost"] for r in rows), 6),
                "billed_cost": round(sum(r["billed_cost"] for r in rows), 6),
            },
        )

    def _categories(self, ctx: StepContext) -> dict[str, tuple[str, str]]:
        cfg = ctx.config
        default = (
            str(cfg.get("default_service_category") or DEFAULT_CATEGORY[0]),
            str(cfg.get("default_service_subcategory") or DEFAULT_CATEGORY[1]),
        )
        found = {"*": default}
        for provider, pair in (cfg.get("service_categories") or {}).items():
            if not isinstance(pair, list) or len(pair) != 2:
                raise TerminalError(
                    f"service_categories.{provider} must be [category, subcategory]"
                )
            found[str(provider)] = (str(pair[0]), str(pair[1]))
        for category, subcategory in found.values():
            try:
                check_service_category(category, subcategory)
            except ValueError as exc:
                raise TerminalError(str(exc)) from None
        return found
