"""The console's spend figures (pipeline/spend.py) on DuckDB and on the BigQuery emulator:
each equals the same figure computed in Python from the FOCUS rows themselves."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any

from pipeline.spend import Window, month_windows, read_spend
from tests.integration.bigquery_emulator import bigquery_emulator  # noqa: F401
from tests.integration.test_warehouse_conformance import wh  # noqa: F401
from tests.support.genai import fill_focus
from warehouse.base import Warehouse

D1, D2 = date(2026, 3, 1), date(2026, 3, 2)
CENT = Decimal("0.000001")


def exact(value: Any) -> Decimal:
    return Decimal(str(value or 0))


def money(value: Any) -> Decimal:
    return exact(value).quantize(CENT)


def rows_of(warehouse: Warehouse, dataset: str) -> list[dict[str, Any]]:
    return warehouse.query(f"SELECT * FROM `{dataset}.cost_data_standard_1_3`").to_pylist()


def test_spend_figures_equal_the_rows(wh: Warehouse) -> None:  # noqa: F811
    org = f"s{uuid.uuid4().hex[:10]}"
    dataset = f"{org}_dev"
    empty = read_spend(wh, dataset, Window(D1, D2), "provider", D2)
    assert not empty.has_table and empty.totals == []  # the empty state, not an error
    fill_focus(wh, D1, D2, org=org)
    rows = rows_of(wh, dataset)
    assert rows, "fill_focus wrote no FOCUS rows"

    spend = read_spend(wh, dataset, Window(D1, D1), "provider", D2)
    day1 = [r for r in rows if r["ChargePeriodStart"].date() == D1]
    by_currency: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 3)
    for r in day1:
        sums = by_currency[r["BillingCurrency"]]
        for i, col in enumerate(("BilledCost", "EffectiveCost", "ListCost")):
            sums[i] += exact(r[col])
    shown = {
        t["currency"]: [money(t[k]) for k in ("billed", "effective", "list")] for t in spend.totals
    }
    assert shown == {c: [money(v) for v in sums] for c, sums in by_currency.items()}

    daily: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for r in day1:
        daily[(r["ServiceProviderName"] or "(none)", r["BillingCurrency"])] += exact(
            r["BilledCost"]
        )
    assert {(d["grp"], d["currency"]): money(d["billed"]) for d in spend.daily} == {
        k: money(v) for k, v in daily.items()
    }
    assert {str(d["day"])[:10] for d in spend.daily} == {D1.isoformat()}

    by_model = read_spend(wh, dataset, Window(D1, D2), "model", D2)
    models = {r["x_model"] or "(none)" for r in rows}
    assert {d["grp"] for d in by_model.daily} == models

    unpriced: dict[str, int] = defaultdict(int)
    for r in rows:
        if r["x_price_status"] == "unpriced":
            unpriced[r["x_run_id"]] += 1
    assert {u["run_id"]: u["n"] for u in by_model.unpriced} == dict(unpriced)
    assert unpriced, "the sample usage has a model with no price (acme-private-llm)"

    top = by_model.top
    assert len(top) <= 10
    assert [money(t["billed"]) for t in top] == sorted((money(t["billed"]) for t in top),
                                                       reverse=True)  # fmt: skip

    # Month to date on 2026-03-02: March 1-2 against February 1-2 (nothing there).
    assert (by_model.mtd_window, by_model.previous_window) == month_windows(D2)
    assert by_model.previous_month == []
    assert {m["currency"]: money(m["billed"]) for m in by_model.month_to_date} == {
        c: money(
            sum((exact(r["BilledCost"]) for r in rows if r["BillingCurrency"] == c), Decimal(0))
        )
        for c in {r["BillingCurrency"] for r in rows}
    }


def test_month_windows_cut_at_the_shorter_month() -> None:
    assert month_windows(date(2026, 3, 31)) == (
        Window(date(2026, 3, 1), date(2026, 3, 31)),
        Window(date(2026, 2, 1), date(2026, 2, 28)),
    )
    assert month_windows(date(2026, 1, 15)) == (
        Window(date(2026, 1, 1), date(2026, 1, 15)),
        Window(date(2025, 12, 1), date(2025, 12, 15)),
    )
