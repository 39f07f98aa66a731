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

# {t}: the org's table, {dim}: a column of DIMENSIONS. Charge days are [@start, @end).
DAILY_SQL = """
SELECT CAST(ChargePeriodStart AS DATE) AS day,
       COALESCE(CAST({dim} AS STRING), '(none)') AS grp,
       BillingCurrency AS currency,
       SUM(BilledCost) AS billed
FROM `{t}`
WHERE ChargePeriodStart >= @start AND ChargePeriodStart < @end
GROUP BY day, grp, currency
ORDER BY day, grp
""".strip()

TOTALS_SQL = """
SELECT BillingCurrency AS currency,
       SUM(BilledCost) AS billed,
       SUM(EffectiveCost) AS effective,
       SUM(ListCost) AS list
FROM `{t}`
WHERE ChargePeriodStart >= @start AND ChargePeriodStart < @end
GROUP BY currency
ORDER BY currency
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


@dataclass(frozen=True)
class Window:
    first: date  # inclusive
    last: date  # inclusive

    def params(self) -> dict[str, object]:
        return {
            # Instants (TIMESTAMP, as ChargePeriodStart is), not wall-clock DATETIMEs.
            "start": datetime.combine(self.first, time.min, UTC),
            "end": datetime.combine(self.last + timedelta(days=1), time.min, UTC),
        }


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


def _query(
    warehouse: Warehouse, sql: str, table: TableRef, window: Window, **fmt: str
) -> list[dict[str, Any]]:
    rows = warehouse.query(sql.format(t=str(table), **fmt), window.params()).to_pylist()
    for row in rows:
        for key in ("billed", "effective", "list"):
            if key in row:
                row[key] = _decimal(row[key])
    return rows


def read_spend(
    warehouse: Warehouse, dataset: str, window: Window, dimension: str, today: date
) -> Spend:
    """All of the spend page's figures for `window`, stacked by `dimension`."""
    column = DIMENSIONS.get(dimension)
    if column is None:
        raise ValueError(f"unknown dimension {dimension!r}")
    table = TableRef(dataset, FOCUS_TABLE)
    spend = Spend(window, dimension, has_table=warehouse.table_schema(table) is not None)
    if not spend.has_table:
        return spend
    spend.daily = _query(warehouse, DAILY_SQL, table, window, dim=column)
    spend.totals = _query(warehouse, TOTALS_SQL, table, window)
    spend.top = _query(warehouse, TOP_SQL, table, window)
    spend.unpriced = _query(warehouse, UNPRICED_SQL, table, window)
    spend.mtd_window, spend.previous_window = month_windows(today)
    spend.month_to_date = _query(warehouse, TOTALS_SQL, table, spend.mtd_window)
    spend.previous_month = _query(warehouse, TOTALS_SQL, table, spend.previous_window)
    return spend
