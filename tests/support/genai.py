"""Building blocks for the GenAI/FOCUS tests: step contexts on DuckDB and a filled FOCUS table."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pipeline.runs.lineage import make_writer
from processors.base import StepContext
from processors.genai.payg_cost import PaygCostProcessor
from processors.genai.rows import cost_row, provider_costs_table, usage_row, usage_table
from processors.generic.procedure_executor import ProcedureExecutor
from processors.subscription.amortize import SubscriptionAmortizeProcessor
from processors.subscription.base import Subscription
from warehouse.base import JobContext, LineageKey, Warehouse

ROOT = Path(__file__).resolve().parents[2]
FOCUS_DATA = ROOT / "tests" / "data" / "focus"


class ListLog:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def info(self, message: str) -> None:
        self.lines.append(("INFO", message))

    def warning(self, message: str) -> None:
        self.lines.append(("WARNING", message))

    def error(self, message: str) -> None:
        self.lines.append(("ERROR", message))


def step_context(
    warehouse: Warehouse,
    config: Mapping[str, Any],
    start: date,
    end: date | None = None,
    *,
    org: str = "acme",
    pipeline_id: str = "genai_test",
    credential_id: str = "default",
    credential: Mapping[str, Any] | None = None,
    run_id: str = "run-1",
    readers: Mapping[str, Any] | None = None,
) -> StepContext:
    """A StepContext as the engine builds it, writing through the real lineage writer."""
    end = end or start
    log = ListLog()
    key = LineageKey(org, pipeline_id, credential_id, start, end)
    dataset = f"{org}_dev"

    def clock() -> datetime:
        return datetime(2026, 11, 1, tzinfo=UTC)

    return StepContext(
        org_slug=org,
        run_id=run_id,
        pipeline_id=pipeline_id,
        step_id="step",
        attempt=1,
        start_date=start,
        end_date=end,
        config=config,
        dataset=dataset,
        credential_id=credential_id,
        warehouse=warehouse,
        log=log,
        _credential_loader=lambda: credential or {},
        _writer=make_writer(
            warehouse, dataset, key, run_id, clock, log, job_context=JobContext(run_id, "step", 1)
        ),
        readers=readers or {},
    )


class ListReader:
    def __init__(self, subs: list[Subscription]) -> None:
        self.subs = subs

    def subscriptions(self, org_slug: str, start: date, end: date) -> list[Subscription]:
        return [s for s in self.subs if s.start_date <= end and (s.end_date or end) >= start]


DAY1, DAY2 = date(2026, 3, 1), date(2026, 3, 2)
SUBSCRIPTIONS = [
    Subscription("sub_team", "openai", "ChatGPT Team", 10, Decimal("30"), "USD", "monthly",
                 date(2026, 2, 15), None),
    Subscription("sub_slack", "slack", "Business+", 4, Decimal("150"), "USD", "annual",
                 date(2026, 3, 1), None),
]  # fmt: skip


def usage_rows(day: date) -> list[dict[str, Any]]:
    return [
        usage_row("openai", day, "t", model="gpt-4o-mini", project_or_workspace_id="proj_1",
                  api_key_id="key_1", service_tier="default", input_tokens=1_000_000,
                  cached_input_tokens=250_000, output_tokens=300_000, requests=120),
        usage_row("openai", day, "t", model="gpt-4o-mini", project_or_workspace_id="proj_1",
                  batch=True, input_tokens=500_000, output_tokens=100_000, requests=10),
        usage_row("openai", day, "t", model="text-embedding-3-small", input_tokens=2_000_000,
                  requests=40),
        usage_row("openai", day, "t", model="acme-private-llm", input_tokens=10_000, requests=1),
        usage_row("anthropic", day, "t", model="claude-sonnet-4-6", project_or_workspace_id="ws_1",
                  api_key_id="apikey_1", service_tier="standard", context_window="0-200k",
                  input_tokens=900_000, cached_input_tokens=600_000, cache_write_5m_tokens=100_000,
                  cache_write_1h_tokens=50_000, output_tokens=40_000, web_search_requests=12),
    ]  # fmt: skip


def fill_focus(
    warehouse: Warehouse, start: date = DAY1, end: date = DAY2, org: str = "acme"
) -> None:
    """Usage -> costs -> subscriptions -> sp_convert_to_focus('all') for [start, end]."""
    days = [date.fromordinal(o) for o in range(start.toordinal(), end.toordinal() + 1)]
    for provider in ("openai", "anthropic"):
        pipeline = f"genai_{provider}_payg"
        ctx = step_context(warehouse, {}, start, end, pipeline_id=pipeline, org=org)
        rows = [r for d in days for r in usage_rows(d) if r["provider"] == provider]
        reported = [
            cost_row(provider, d, "t", project_or_workspace_id="proj_1", model="gpt-4o-mini",
                     line_item="gpt-4o-mini, input", amount=0.2, currency="usd")
            for d in days
            if provider == "openai"
        ]  # fmt: skip
        ctx.write("genai_payg_usage_raw", usage_table(rows), date_column="usage_date")
        ctx.write(
            "genai_payg_provider_costs", provider_costs_table(reported), date_column="usage_date"
        )
        PaygCostProcessor().run(
            step_context(warehouse, {}, start, end, pipeline_id=pipeline, org=org)
        )
    SubscriptionAmortizeProcessor().run(
        step_context(
            warehouse,
            {
                "service_categories": {
                    "slack": ["Business Applications", "Productivity and Collaboration"]
                }
            },
            start,
            end,
            pipeline_id="subscription_saas_cost",
            readers={"subscriptions": ListReader(SUBSCRIPTIONS)},
            org=org,
        )
    )
    convert(warehouse, "all", start, end, org=org)


def convert(
    warehouse: Warehouse,
    provider: str,
    start: date,
    end: date,
    run_id: str = "conv",
    org: str = "acme",
) -> None:
    ctx = step_context(
        warehouse,
        {"procedure": "sp_convert_to_focus", "args": {"p_provider": provider}},
        start,
        end,
        pipeline_id="genai_unified_consolidate",
        run_id=run_id,
        org=org,
    )
    ProcedureExecutor().run(ctx)
