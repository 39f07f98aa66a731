"""Running a cloud billing pipeline in-process, and checking its FOCUS rows.

`run_pipeline` goes through the real parts a worker uses for each step (the YAML loader,
template resolution and topological plan, the processor registry, the lineage writer), only
without the broker, so the cloud tests spend their time on the emulators, not on Celery.
The API-and-worker path is covered for one cloud in test_cloud_e2e.py.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline.definition.config import load_pipeline
from pipeline.runs.lineage import make_writer
from pipeline.runs.service import build_plan
from processors.base import StepContext, StepResult
from processors.cloud.exports.focus import normalize_focus_export
from processors.registry import get_processor
from tests.support.genai import FOCUS_DATA, ListLog, step_context
from warehouse import focus_values as fv
from warehouse.base import LINEAGE_NAMES, JobContext, LineageKey, Warehouse

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = list(csv.DictReader((FOCUS_DATA / "focus_1_3_columns.csv").open()))
MANDATORY = [r["column"] for r in REFERENCE if r["required"] == "Mandatory"]


def money(value: float | Decimal | str | None) -> Decimal:
    return Decimal(str(value or 0)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def run_pipeline(
    warehouse: Warehouse,
    path: str | Path,
    *,
    start: date,
    end: date,
    credential: Mapping[str, Any],
    org: str = "acme",
    credential_id: str = "default",
    run_id: str = "run-1",
    log: ListLog | None = None,
) -> dict[str, StepResult]:
    """Run every step of the pipeline file in dependency order; the first error propagates."""
    spec = load_pipeline(ROOT / path)
    dataset = f"{org}_dev"
    variables = {
        "org_slug": org,
        "project_id": "test-proj",
        "org_dataset": dataset,
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "credential_id": credential_id,
        "pipeline_id": spec.pipeline_id,
        "run_id": run_id,
    }
    plan = build_plan(spec, variables, dataset, grace=30)
    key = LineageKey(org, spec.pipeline_id, credential_id, start, end)
    log = log or ListLog()
    results: dict[str, StepResult] = {}
    for level in plan.levels:
        for step_id in level:
            step = plan.steps[step_id]
            ctx = StepContext(
                org_slug=org,
                run_id=run_id,
                pipeline_id=spec.pipeline_id,
                step_id=step_id,
                attempt=1,
                start_date=start,
                end_date=end,
                config=dict(step.config),
                dataset=dataset,
                credential_id=credential_id,
                warehouse=warehouse,
                log=log,
                _credential_loader=lambda: dict(credential),
                _writer=make_writer(
                    warehouse,
                    dataset,
                    key,
                    run_id,
                    lambda: datetime.now(UTC),
                    log,
                    job_context=JobContext(run_id, step_id, 1),
                ),
            )
            results[step_id] = get_processor(step.ps_type).run(ctx)
    return results


def table_exists(warehouse: Warehouse, org: str, table: str) -> bool:
    from warehouse.base import TableRef

    return warehouse.table_schema(TableRef(f"{org}_dev", table)) is not None


def count_rows(warehouse: Warehouse, org: str, table: str) -> int:
    """Rows of the org's table; 0 when the table doesn't exist."""
    if not table_exists(warehouse, org, table):
        return 0
    got = warehouse.query(f"SELECT COUNT(*) AS n FROM `{org}_dev.{table}`")
    return int(got.column("n")[0].as_py())


def focus_rows(warehouse: Warehouse, org: str, provider: str) -> list[dict[str, Any]]:
    if not table_exists(warehouse, org, "cost_data_standard_1_3"):
        return []
    return warehouse.query(
        f"SELECT * FROM `{org}_dev.cost_data_standard_1_3` WHERE x_provider = @p",
        {"p": provider},
    ).to_pylist()


def billed_total(rows: list[dict[str, Any]]) -> Decimal:
    return money(sum(Decimal(str(r["BilledCost"])) for r in rows))


def assert_focus_rows_valid(rows: list[dict[str, Any]]) -> None:
    """Mandatory columns set, enumerations within FOCUS 1.3's allowed values, lineage set."""
    assert rows, "no FOCUS rows"
    for row in rows:
        # Mandatory columns whose values FOCUS conditions: ChargeClass is null unless the row
        # is a correction; PricingQuantity/PricingUnit MUST be null on Tax rows and MAY be
        # null on other rows that are neither Usage nor Purchase.
        priced = row["ChargeCategory"] in ("Usage", "Purchase") and row["ChargeClass"] is None
        optional = {"ChargeClass"} | (set() if priced else {"PricingQuantity", "PricingUnit"})
        missing = [c for c in MANDATORY if c not in optional and row[c] is None]
        if row["ChargeCategory"] == "Tax":
            assert row["PricingQuantity"] is None and row["PricingUnit"] is None, _label(row)
        assert not missing, f"Mandatory columns null: {missing} in {_label(row)}"
        assert all(row[c] is not None for c in LINEAGE_NAMES), _label(row)
        assert row["ChargeCategory"] in fv.CHARGE_CATEGORY, _label(row)
        assert row["ChargeClass"] is None or row["ChargeClass"] in fv.CHARGE_CLASS
        assert row["ChargeFrequency"] is None or row["ChargeFrequency"] in fv.CHARGE_FREQUENCY
        assert row["PricingCategory"] is None or row["PricingCategory"] in fv.PRICING_CATEGORY
        fv.check_service_category(row["ServiceCategory"], row["ServiceSubcategory"])
        if row["CommitmentDiscountId"] is not None:
            assert row["CommitmentDiscountCategory"] in fv.COMMITMENT_DISCOUNT_CATEGORY
        status = row["CommitmentDiscountStatus"]
        assert status is None or status in fv.COMMITMENT_DISCOUNT_STATUS, _label(row)
        assert row["BilledCost"] is not None and row["EffectiveCost"] is not None


def assert_run_lineage(
    rows: list[dict[str, Any]],
    pipeline_id: str,
    *,
    org: str = "acme",
    credential_id: str = "default",
    run_id: str = "run-1",
) -> None:
    """Every row says which run wrote it, and is filed under its own charge date."""
    for row in rows:
        assert all(row[c] is not None for c in LINEAGE_NAMES), _label(row)
        assert (row["x_org_slug"], row["x_pipeline_id"]) == (org, pipeline_id), _label(row)
        assert (row["x_credential_id"], row["x_run_id"]) == (credential_id, run_id), _label(row)
        assert row["x_pipeline_run_date"] == row["ChargePeriodStart"].date(), _label(row)


def _label(row: dict[str, Any]) -> str:
    return f"{row.get('x_provider')} {row.get('ChargeCategory')} {row.get('ChargeDescription')!r}"


# One billing period of FOCUS-export rows covering every charge kind the mappings handle:
# on-demand usage, usage covered by a commitment, an unused commitment, the commitment's
# purchase, tax and a credit. Written in PascalCase as the clouds deliver them.
def _focus_row(**values: Any) -> dict[str, Any]:
    base = {
        "BillingAccountId": "acct-1",
        "BillingAccountName": "Main billing account",
        "BillingCurrency": "USD",
        "BillingPeriodStart": "2026-10-01T00:00:00Z",
        "BillingPeriodEnd": "2026-11-01T00:00:00Z",
        "ChargePeriodStart": "2026-10-05T00:00:00Z",
        "ChargePeriodEnd": "2026-10-06T00:00:00Z",
        "ChargeFrequency": "Usage-Based",
        "InvoiceIssuerName": "Cloud Inc.",
        "ProviderName": "Cloud Inc.",
        "PublisherName": "Cloud Inc.",
        "ServiceName": "Virtual Machines",
        "ServiceCategory": "Compute",
        "ServiceSubcategory": "Virtual Machines",
        "SubAccountId": "sub-1",
        "SubAccountName": "Production",
        "RegionId": "region-1",
        "RegionName": "Region One",
    }
    return base | values


FOCUS_EXPORT_SAMPLE: list[dict[str, Any]] = [
    _focus_row(
        ChargeCategory="Usage",
        ChargeDescription="VM hours, on demand",
        PricingCategory="Standard",
        BilledCost="10.0",
        EffectiveCost="10.0",
        ListCost="12.0",
        ContractedCost="10.0",
        ListUnitPrice="1.2",
        ContractedUnitPrice="1.0",
        PricingQuantity="10",
        PricingUnit="Hours",
        ConsumedQuantity="10",
        ConsumedUnit="Hours",
        SkuId="sku-vm",
        SkuPriceId="sku-vm-od",
        ResourceId="vm-1",
        ResourceName="web-1",
        ResourceType="Virtual Machine",
    ),
    _focus_row(
        ChargeCategory="Usage",
        ChargeDescription="VM hours covered by a savings plan",
        PricingCategory="Committed",
        BilledCost="0.0",
        EffectiveCost="6.0",
        ListCost="9.6",
        ContractedCost="8.0",
        ListUnitPrice="1.2",
        ContractedUnitPrice="1.0",
        PricingQuantity="8",
        PricingUnit="Hours",
        ConsumedQuantity="8",
        ConsumedUnit="Hours",
        SkuId="sku-vm",
        SkuPriceId="sku-vm-od",
        ResourceId="vm-2",
        ResourceName="web-2",
        ResourceType="Virtual Machine",
        CommitmentDiscountId="commitment-1",
        CommitmentDiscountName="Compute savings plan",
        CommitmentDiscountCategory="Spend",
        CommitmentDiscountType="Savings Plan",
        CommitmentDiscountStatus="Used",
        CommitmentDiscountQuantity="6.0",
        CommitmentDiscountUnit="USD",
    ),
    _focus_row(
        ChargeCategory="Usage",
        ChargeDescription="Unused savings plan commitment",
        PricingCategory="Committed",
        BilledCost="0.0",
        EffectiveCost="2.0",
        ListCost="0.0",
        ContractedCost="0.0",
        ServiceName="Savings Plans",
        CommitmentDiscountId="commitment-1",
        CommitmentDiscountName="Compute savings plan",
        CommitmentDiscountCategory="Spend",
        CommitmentDiscountType="Savings Plan",
        CommitmentDiscountStatus="Unused",
        CommitmentDiscountQuantity="2.0",
        CommitmentDiscountUnit="USD",
    ),
    _focus_row(
        ChargeCategory="Purchase",
        ChargeFrequency="Recurring",
        ChargeDescription="Savings plan, monthly fee",
        BilledCost="8.0",
        EffectiveCost="0.0",
        ListCost="8.0",
        ContractedCost="8.0",
        ServiceName="Savings Plans",
        CommitmentDiscountId="commitment-1",
        CommitmentDiscountName="Compute savings plan",
        CommitmentDiscountCategory="Spend",
        CommitmentDiscountType="Savings Plan",
    ),
    _focus_row(
        ChargeCategory="Tax",
        ChargeFrequency="Recurring",
        ChargeDescription="Sales tax",
        BilledCost="1.5",
        EffectiveCost="1.5",
        ListCost="0.0",
        ContractedCost="0.0",
        ServiceName="Tax",
        ServiceCategory="Other",
        ServiceSubcategory="Other (Other)",
    ),
    _focus_row(
        ChargeCategory="Credit",
        ChargeFrequency="One-Time",
        ChargeDescription="Promotional credit",
        BilledCost="-3.0",
        EffectiveCost="-3.0",
        ListCost="0.0",
        ContractedCost="0.0",
    ),
]
# What the sample bills, to the cent: 10 + 0 + 0 + 8 + 1.5 - 3.
FOCUS_EXPORT_SAMPLE_BILLED = Decimal("16.50")


def text_table(rows: list[Mapping[str, Any]]) -> pa.Table:
    """The columns the rows name, all text as a CSV export reads; null where a row has none."""
    names = sorted({k for r in rows for k in r})
    return pa.table({n: pa.array([r.get(n) for r in rows], pa.string()) for n in names})


def call_sp_focus(
    warehouse: Warehouse,
    cloud: str,
    start: date,
    end: date,
    *,
    org: str = "acme",
    run_id: str = "r1",
) -> None:
    """CALL sp_focus_<cloud> directly, with the parameters its pipeline's unify step passes."""
    warehouse.call_procedure(
        f"{org}_dev",
        f"sp_focus_{cloud}",
        {
            "p_start_date": start,
            "p_end_date": end,
            "p_org_slug": org,
            "p_pipeline_id": f"cloud_{cloud}_billing",
            "p_credential_id": "default",
            "p_run_id": run_id,
        },
    )


def write_focus_export_sample(
    warehouse: Warehouse,
    raw_table: str,
    *,
    org: str = "acme",
    pipeline_id: str = "cloud_sample_billing",
    overrides: Mapping[str, Any] | None = None,
) -> None:
    """FOCUS_EXPORT_SAMPLE into one cloud's raw table, as its extract step would write it."""
    rows = [r | dict(overrides or {}) for r in FOCUS_EXPORT_SAMPLE]
    day = date(2026, 10, 5)
    ctx = step_context(warehouse, {}, day, day, org=org, pipeline_id=pipeline_id)
    raw = normalize_focus_export(text_table(rows), source_file="sample")
    ctx.write(raw_table, raw, date_column="charge_date")


def convert_cloud(
    warehouse: Warehouse, cloud: str, start: date, end: date, *, org: str = "acme"
) -> None:
    """CALL sp_focus_<cloud> for the dates, as the pipeline's unify step does."""
    from processors.generic.procedure_executor import ProcedureExecutor

    ctx = step_context(
        warehouse,
        {"procedure": f"sp_focus_{cloud}"},
        start,
        end,
        org=org,
        pipeline_id=f"cloud_{cloud}_billing",
        run_id=f"conv-{cloud}",
    )
    ProcedureExecutor().run(ctx)
