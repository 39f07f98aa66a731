"""The web console's spend figures: GoogleSQL over the org's own cost_data_standard_1_3,
run through the warehouse protocol (DuckDB and BigQuery alike).

Every figure the spend page shows is one of the queries below, verbatim (the README's
"Web console" section lists them); the browser test compares the page with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from warehouse.base import TableRef, Warehouse

FOCUS_TABLE = "cost_data_standard_1_3"

# The dimensions the daily chart can stack by: a fixed map, so no request value ever
# reaches the SQL text.
DIMENSIONS = {
    "provider": "ServiceProviderName",
    "category": "ServiceCategory",
    "service": "ServiceName",
    "model": "x_model",
    "sku": "SkuId",
}

# The page's figures, each one of these GoogleSQL queries ({t}: the org's table, {dim}: a
# column of DIMENSIONS; charges with @start <= ChargePeriodStart < @end). The README lists
# them as they are here.
DAILY_SQL = """
SELECT DIV(UNIX_SECONDS(ChargePeriodStart), 86400) AS day_number,
       COALESCE(CAST({dim} AS STRING), '(none)') AS grp,
       BillingCurrency AS currency,
       SUM(BilledCost) AS billed,
       SUM(EffectiveCost) AS effective,
       SUM(ListCost) AS list
FROM `{t}`
WHERE ChargePeriodStart >= @start AND ChargePeriodStart < @end
GROUP BY day_number, grp, currency
""".strip()

TOTALS_SQL = """
SELECT BillingCurrency AS currency,
       SUM(BilledCost) AS billed,
       SUM(EffectiveCost) AS effective,
       SUM(ListCost) AS list
FROM `{t}`
WHERE ChargePeriodStart >= @start AND ChargePeriodStart < @end
GROUP BY currency
""".strip()

TOP_SQL = """
SELECT COALESCE(ServiceName, '(none)') AS service,
       COALESCE(x_model, '') AS model,
       BillingCurrency AS currency,
       SUM(BilledCost) AS billed
FROM `{t}`
WHERE ChargePeriodStart >= @start AND ChargePeriodStart < @end
GROUP BY service, model, currency
ORDER BY billed DESC, service, model
LIMIT 10
""".strip()

UNPRICED_SQL = """
SELECT x_run_id AS run_id, COUNT(*) AS n
FROM `{t}`
WHERE ChargePeriodStart >= @start AND ChargePeriodStart < @end
  AND x_price_status = 'unpriced'
GROUP BY run_id
ORDER BY n DESC, run_id
LIMIT 50
""".strip()

# What the page runs: the three above in one statement, so the warehouse is opened and the
# table scanned once. The daily part also covers the previous month's first days (for
# month to date), [@daily_start, @daily_end); the totals are sums of its rows.
PAGE_SQL = """
SELECT 'daily' AS part, DIV(UNIX_SECONDS(ChargePeriodStart), 86400) AS day_number,
       COALESCE(CAST({dim} AS STRING), '(none)') AS grp, CAST(NULL AS STRING) AS model,
       BillingCurrency AS currency, SUM(BilledCost) AS billed,
       SUM(EffectiveCost) AS effective, SUM(ListCost) AS list, COUNT(*) AS n
FROM `{t}`
WHERE ChargePeriodStart >= @daily_start AND ChargePeriodStart < @daily_end
GROUP BY day_number, grp, currency
UNION ALL
(SELECT 'top' AS part, CAST(NULL AS INT64) AS day_number,
        COALESCE(ServiceName, '(none)') AS grp, COALESCE(x_model, '') AS model,
        BillingCurrency AS currency, SUM(BilledCost) AS billed,
        SUM(EffectiveCost) AS effective, SUM(ListCost) AS list, COUNT(*) AS n
 FROM `{t}`
 WHERE ChargePeriodStart >= @start AND ChargePeriodStart < @end
 GROUP BY grp, model, currency
 ORDER BY billed DESC, grp, model
 LIMIT 10)
UNION ALL
(SELECT 'unpriced' AS part, CAST(NULL AS INT64) AS day_number, x_run_id AS grp,
        CAST(NULL AS STRING) AS model, CAST(NULL AS STRING) AS currency,
        SUM(BilledCost) AS billed, SUM(EffectiveCost) AS effective, SUM(ListCost) AS list,
        COUNT(*) AS n
 FROM `{t}`
 WHERE ChargePeriodStart >= @start AND ChargePeriodStart < @end
   AND x_price_status = 'unpriced'
 GROUP BY grp
 ORDER BY n DESC, grp
 LIMIT 50)
""".strip()

EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class Window:
    first: date  # inclusive
    last: date  # inclusive

    def params(self) -> dict[str, object]:
        """@start and @end of the queries above for this window."""
        return {"start": _at(self.first), "end": _at(self.last + timedelta(days=1))}


@dataclass
class Spend:
    window: Window
    dimension: str
    has_table: bool
    # (day, group) -> billed, and the currencies seen
    daily: list[dict[str, Any]] = field(default_factory=list)
    totals: list[dict[str, Any]] = field(default_factory=list)
    top: list[dict[str, Any]] = field(default_factory=list)
    unpriced: list[dict[str, Any]] = field(default_factory=list)
    month_to_date: list[dict[str, Any]] = field(default_factory=list)
    previous_month: list[dict[str, Any]] = field(default_factory=list)
    mtd_window: Window | None = None
    previous_window: Window | None = None


def month_windows(today: date) -> tuple[Window, Window]:
    """This month's days up to today, and the same days of the previous month (cut at its
    last day when it is shorter)."""
    first = today.replace(day=1)
    prev_last_day = first - timedelta(days=1)
    prev_first = prev_last_day.replace(day=1)
    prev_end = prev_first.replace(day=min(today.day, prev_last_day.day))
    return Window(first, today), Window(prev_first, prev_end)


def _decimal(value: object) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


def _at(day: date) -> datetime:
    # Instants (TIMESTAMP, as ChargePeriodStart is), not wall-clock DATETIMEs.
    return datetime.combine(day, time.min, UTC)


def _sums(rows: list[dict[str, Any]], window: Window) -> list[dict[str, Any]]:
    """Per currency: billed, effective and list cost of the daily rows inside `window`
    (the same figures as TOTALS_SQL over that window)."""
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        if window.first <= row["day"] <= window.last:
            total = out.setdefault(
                row["currency"],
                {"currency": row["currency"], "billed": Decimal(0), "effective": Decimal(0),
                 "list": Decimal(0)},
            )  # fmt: skip
            for key in ("billed", "effective", "list"):
                total[key] += row[key]
    return [out[c] for c in sorted(out, key=str)]


def read_spend(
    warehouse: Warehouse, dataset: str, window: Window, dimension: str, today: date
) -> Spend:
    """All of the spend page's figures for `window`, stacked by `dimension`: one query."""
    column = DIMENSIONS.get(dimension)
    if column is None:
        raise ValueError(f"unknown dimension {dimension!r}")
    table = TableRef(dataset, FOCUS_TABLE)
    spend = Spend(window, dimension, has_table=warehouse.table_schema(table) is not None)
    if not spend.has_table:
        return spend
    spend.mtd_window, spend.previous_window = month_windows(today)
    daily_first = min(window.first, spend.previous_window.first)
    params = {
        "daily_start": _at(daily_first),
        "daily_end": _at(max(window.last, today) + timedelta(days=1)),
        **window.params(),
    }
    rows = warehouse.query(PAGE_SQL.format(t=str(table), dim=column), params).to_pylist()
    daily: list[dict[str, Any]] = []
    for row in rows:
        for key in ("billed", "effective", "list"):
            row[key] = _decimal(row[key])
        part = row.pop("part")
        if part == "daily":
            row["day"] = EPOCH + timedelta(days=int(row.pop("day_number")))
            daily.append(row)
        elif part == "top":
            spend.top.append({**row, "service": row["grp"]})
        else:
            spend.unpriced.append({"run_id": row["grp"], "n": int(row["n"])})
    daily.sort(key=lambda r: (r["day"], r["grp"], str(r["currency"])))
    spend.daily = [r for r in daily if window.first <= r["day"] <= window.last]
    spend.totals = _sums(daily, window)
    spend.month_to_date = _sums(daily, spend.mtd_window)
    spend.previous_month = _sums(daily, spend.previous_window)
    return spend
