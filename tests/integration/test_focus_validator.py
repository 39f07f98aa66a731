"""The official FOCUS 1.3 validator on cost_data_standard_1_3: GenAI and subscription rows,
then the same with every cloud's rows (tests/support/focus_validator.py runs it)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from tests.support.cloud import convert_cloud, write_focus_export_sample
from tests.support.focus_validator import assert_validator_passes
from tests.support.genai import fill_focus
from warehouse.duckdb import DuckDBWarehouse

# Each file-export cloud's raw table gets the same charge kinds, named as that cloud names them.
CLOUD_SAMPLES = {
    "aws": ("aws_focus_export_raw", {"ProviderName": "AWS", "InvoiceIssuerName": "AWS Inc."}),
    "azure": ("azure_focus_export_raw", {"ProviderName": "Microsoft"}),
    "oci": ("oci_focus_report_raw", {"ProviderName": "Oracle", "InvoiceIssuerName": "Oracle"}),
}


def test_focus_table_passes_the_official_validator(tmp_path: Path) -> None:
    warehouse = DuckDBWarehouse(tmp_path / "warehouse.duckdb")
    fill_focus(warehouse)
    assert_validator_passes(warehouse, tmp_path, min_rows=20)


def test_genai_and_cloud_rows_together_pass_the_official_validator(tmp_path: Path) -> None:
    warehouse = DuckDBWarehouse(tmp_path / "warehouse.duckdb")
    fill_focus(warehouse)
    day = date(2026, 10, 5)
    for cloud, (raw_table, names) in CLOUD_SAMPLES.items():
        write_focus_export_sample(warehouse, raw_table, overrides=names)
        convert_cloud(warehouse, cloud, day, day)
    got = warehouse.query(
        "SELECT x_provider, COUNT(*) AS n FROM `acme_dev.cost_data_standard_1_3` GROUP BY 1"
    ).to_pylist()
    counts = {r["x_provider"]: r["n"] for r in got}
    assert {counts[c] for c in CLOUD_SAMPLES} == {6} and "openai" in counts
    assert_validator_passes(warehouse, tmp_path, min_rows=38)
