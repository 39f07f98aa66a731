"""SaaS subscriptions: the metadata service and reader, daily amortization, and the CLI."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli import main
from pipeline.orgs.service import OrgService
from pipeline.storage.db import make_engine, upgrade
from pipeline.storage.run_store import SqlRunStore
from pipeline.subscriptions import SqlSubscriptionReader, SubscriptionService
from pipeline_ops_core.errors import NotFoundError, TerminalError
from processors.subscription.amortize import SubscriptionAmortizeProcessor, cycle_of, daily_rows
from processors.subscription.base import Subscription

TEAM = {
    "provider": "openai",
    "plan": "ChatGPT Team",
    "seats": 10,
    "unit_price": "30",
    "billing_cycle": "monthly",
    "start_date": date(2026, 1, 31),
}


@pytest.fixture
def engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    upgrade(url)
    engine = make_engine(url)
    OrgService(SqlRunStore(engine)).create("acme")
    return engine


def sub(
    cycle: str = "monthly", start: date = date(2026, 1, 31), end: date | None = None
) -> Subscription:
    return Subscription(
        "sub_1", "openai", "ChatGPT Team", 10, Decimal("30"), "USD", cycle, start, end
    )


def test_service_add_list_remove_and_reader(engine) -> None:  # type: ignore[no-untyped-def]
    service = SubscriptionService(engine)
    added = service.add("acme", TEAM)
    assert added["unit_price"] == Decimal("30") and added["currency"] == "USD"
    ended = service.add(
        "acme",
        {
            **TEAM,
            "provider": "cursor",
            "plan": "Business",
            "start_date": date(2025, 1, 1),
            "end_date": date(2025, 12, 31),
        },
    )
    assert [s["provider"] for s in service.list("acme")] == ["cursor", "openai"]
    reader = SqlSubscriptionReader(engine)
    active = reader.subscriptions("acme", date(2026, 2, 1), date(2026, 2, 28))
    assert [s.subscription_id for s in active] == [added["subscription_id"]]
    assert reader.subscriptions("other", date(2026, 2, 1), date(2026, 2, 28)) == []
    service.remove("acme", ended["subscription_id"])
    with pytest.raises(NotFoundError):
        service.remove("acme", ended["subscription_id"])


def test_service_rejects_bad_fields(engine) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TerminalError) as raised:
        SubscriptionService(engine).add(
            "acme",
            {
                **TEAM,
                "seats": 0,
                "unit_price": "-1",
                "billing_cycle": "weekly",
                "currency": "dollars",
                "end_date": date(2026, 1, 1),
            },
        )
    for word in ("seats", "unit_price", "billing_cycle", "currency", "end_date"):
        assert word in str(raised.value)


def test_monthly_cycles_anchor_on_the_start_day() -> None:
    s = sub()  # anchored on the 31st: Feb 28, Mar 31, Apr 30
    assert cycle_of(s, date(2026, 2, 27)) == (date(2026, 1, 31), date(2026, 2, 28))
    assert cycle_of(s, date(2026, 2, 28)) == (date(2026, 2, 28), date(2026, 3, 31))
    assert cycle_of(s, date(2026, 4, 30)) == (date(2026, 4, 30), date(2026, 5, 31))
    assert cycle_of(sub("annual", date(2024, 2, 29)), date(2025, 3, 1)) == (
        date(2025, 2, 28),
        date(2026, 2, 28),
    )


def test_daily_rows_amortize_and_bill_on_the_cycle_start() -> None:
    rows = daily_rows(sub(), date(2026, 2, 1), date(2026, 3, 30), "OpenAI", ("A", "B"))
    cycle = [r for r in rows if r["period_start"] == date(2026, 2, 28)]  # 31 days
    assert len(cycle) == 31
    assert sum(r["daily_cost"] for r in cycle) == pytest.approx(300)
    assert [r["billed_cost"] for r in cycle if r["billed_cost"]] == [300]
    assert cycle[0]["seat_day_price"] == pytest.approx(30 / 31)
    # Ending mid-cycle: billed pro rata, so billed and amortized totals agree.
    ended = daily_rows(
        sub(end=date(2026, 3, 9)), date(2026, 2, 28), date(2026, 3, 31), "OpenAI", ("A", "B")
    )
    assert len(ended) == 10
    assert sum(r["billed_cost"] for r in ended) == pytest.approx(
        sum(r["daily_cost"] for r in ended)
    )


def test_processor_writes_daily_rows_through_the_reader(make_ctx) -> None:  # type: ignore[no-untyped-def]
    class Reader:
        def subscriptions(self, org_slug: str, start: date, end: date) -> list[Subscription]:
            return [sub("quarterly", date(2026, 1, 1))]

    ctx = make_ctx({}, date(2026, 1, 1), date(2026, 1, 10), readers={"subscriptions": Reader()})
    result = SubscriptionAmortizeProcessor().run(ctx)
    assert result.rows_written == 10
    assert result.metrics["billed_cost"] == pytest.approx(300)  # the quarter's invoice, day 1
    assert result.metrics["amortized_cost"] == pytest.approx(300 * 10 / 90)
    bad = make_ctx(
        {"default_service_category": "AI"}, date(2026, 1, 1), readers={"subscriptions": Reader()}
    )
    with pytest.raises(TerminalError, match="ServiceCategory"):
        SubscriptionAmortizeProcessor().run(bad)
    with pytest.raises(TerminalError, match="reader"):
        SubscriptionAmortizeProcessor().run(make_ctx({}, date(2026, 1, 1)))


def test_cli_add_list_remove(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'meta.db'}")
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
    assert runner.invoke(main, ["orgs", "create", "acme"]).exit_code == 0
    added = runner.invoke(
        main,
        [
            "subscriptions",
            "add",
            "--org",
            "acme",
            "--provider",
            "cursor",
            "--plan",
            "Business",
            "--seats",
            "5",
            "--unit-price",
            "40",
            "--start-date",
            "2026-01-01",
        ],
    )
    assert added.exit_code == 0, added.output
    sub_id = added.output.split("subscription_id:")[1].strip()
    listed = runner.invoke(main, ["subscriptions", "list", "--org", "acme"])
    assert sub_id in listed.output and "cursor" in listed.output and "5 seats" in listed.output
    missing = runner.invoke(
        main,
        [
            "subscriptions",
            "add",
            "--org",
            "nobody",
            "--provider",
            "x",
            "--plan",
            "p",
            "--seats",
            "1",
            "--unit-price",
            "1",
            "--start-date",
            "2026-01-01",
        ],
    )
    assert missing.exit_code == 1 and "not found" in missing.output
    removed = runner.invoke(main, ["subscriptions", "remove", "--org", "acme", sub_id])
    assert removed.exit_code == 0
    assert sub_id not in runner.invoke(main, ["subscriptions", "list", "--org", "acme"]).output
