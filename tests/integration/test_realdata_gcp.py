"""A real GCP standard billing export (25 rows, ../shared/realdata/gcp, kept by project-koku)
in the BigQuery emulator, through the shipped GCP pipeline.

koku keeps the export as CSV; the test turns each line back into the typed row BigQuery
holds, as the export writes it: dotted names (`service.id`) become RECORD fields, Python
reprs of arrays (`[{'key': ..., 'value': ...}]`, `credits`) become REPEATED RECORDs, empty
text is null, and `partition_date` (the ingestion-time partition, which a load cannot set)
is dropped, so the table is unpartitioned and the pipeline reads it by usage time. The
amounts are what the export says: micro-dollar sized (5e-06), so totals are compared to the
nano-dollar, not the cent. Expected totals are summed from the CSV text with Decimal.
"""

from __future__ import annotations

import ast
import csv
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.integration.bigquery_emulator import bigquery_emulator  # noqa: F401
from tests.integration.test_cloud_gcp import (  # noqa: F401 - fixtures
    API_KEY,
    catalog,
    seed_export,
    service_account,
    token_server,
)
from tests.support.cloud import assert_focus_rows_valid, focus_rows, run_pipeline
from tests.support.gcp_catalog_server import CatalogServer
from tests.support.realdata import realdata_file
from tests.support.servers import Server
from warehouse.duckdb import DuckDBWarehouse

NOV_START, NOV_END = date(2020, 11, 1), date(2020, 11, 30)
REPEATED = ("project.labels", "labels", "system_labels", "credits")
NUMBERS = ("cost", "currency_conversion_rate", "usage.amount", "usage.amount_in_pricing_units")
NANO = Decimal("1e-9")


def koku_rows() -> list[dict[str, str]]:
    with realdata_file("gcp/koku_gcp_export_202011.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def typed_row(line: dict[str, str]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name, text in line.items():
        if name == "partition_date":
            continue
        value: Any
        if name in REPEATED:
            value = ast.literal_eval(text) if text else []
        elif name in NUMBERS:
            value = float(text) if text else None
        elif name.endswith("_time"):
            value = text.replace(" ", "T") if text else None
        else:
            value = text or None
        target = row
        *parents, leaf = name.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return row


@pytest.fixture
def gcp_credential(
    tmp_path: Path,
    bigquery_emulator: Server,  # noqa: F811
    catalog: CatalogServer,  # noqa: F811
    service_account: Any,  # noqa: F811
) -> dict[str, Any]:
    export = seed_export(bigquery_emulator, partitioned=False)
    jsonl = tmp_path / "koku.jsonl"
    jsonl.write_text("\n".join(json.dumps(typed_row(r)) for r in koku_rows()) + "\n")
    export.client.query(f"DELETE FROM `{export.table}` WHERE TRUE").result()
    export.load(jsonl)
    return {
        **service_account,
        "billing_table": export.table,
        "api_endpoint": bigquery_emulator.url,
        "catalog_api_key": API_KEY,
        "catalog_base_url": catalog.url,
    }


def test_the_real_gcp_export_matches_per_charge_category(
    gcp_credential: dict[str, Any], tmp_path: Path
) -> None:
    source = koku_rows()
    usage = sum(Decimal(r["cost"]) for r in source)
    credits = [c for r in source for c in ast.literal_eval(r["credits"])]
    assert len(credits) == 8 and {c["type"] for c in credits} == {"PROMOTION"}
    credit_total = sum(Decimal(str(c["amount"])) for c in credits)

    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    run_pipeline(
        warehouse,
        "configs/cloud/gcp/cost/billing.yml",
        start=NOV_START,
        end=NOV_END,
        credential=gcp_credential,
    )
    rows = focus_rows(warehouse, "acme", "gcp")
    assert_focus_rows_valid(rows)

    def total(category: str) -> Decimal:
        picked = [Decimal(str(r["BilledCost"])) for r in rows if r["ChargeCategory"] == category]
        return sum(picked, Decimal(0)).quantize(NANO)

    assert {r["ChargeCategory"] for r in rows} == {"Usage", "Credit"}
    assert sum(1 for r in rows if r["ChargeCategory"] == "Usage") == len(source)
    assert sum(1 for r in rows if r["ChargeCategory"] == "Credit") == len(credits)
    assert total("Usage") == usage.quantize(NANO)
    assert total("Credit") == credit_total.quantize(NANO)
    # The promotions (free-trial credits) cancel the usage they cover: the bill is 0.
    assert (usage + credit_total).quantize(NANO) == 0
    for row in rows:
        assert row["Tags"] is None or isinstance(json.loads(row["Tags"]), dict), row["Tags"]
    # The export's pricing units (gibibyte, gibibyte month, tebibyte) in FOCUS's unit format.
    source_units = {r["usage.pricing_unit"] for r in source}
    assert {"gibibyte", "gibibyte month"} <= source_units
    units = {r["PricingUnit"] for r in rows if r["ChargeCategory"] == "Usage"}
    assert units and not units & source_units
    assert {"GiB", "GiB-Months"} <= units
