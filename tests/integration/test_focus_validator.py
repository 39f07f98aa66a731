"""The official FOCUS 1.3 validator (focus-validator 2.2.1, offline) on cost_data_standard_1_3.

The validator lives in its own Python 3.12 venv (`make focus-validator`, which `make test`
runs first). The table is exported as typed Parquet (CSV would turn numeric-looking ids into
integers) and every failing rule must be one of the model's known quirks.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.support.cloud import convert_cloud, write_focus_export_sample
from tests.support.genai import FOCUS_DATA, fill_focus
from warehouse.duckdb import DuckDBWarehouse

VENV = Path(
    os.environ.get("FOCUS_VALIDATOR_VENV")
    or Path(os.environ.get("PIPELINE_OPS_CACHE_DIR") or Path.home() / ".cache" / "pipeline-ops")
    / "focus-validator-venv"
)
TOTAL = re.compile(r"Total: (\d+) \| Pass: (\d+) \| Fail: (\d+) \| Skipped: (\d+)")
FAILED = re.compile(r"^- (CAU-[\w-]+): violations=(\d+)", re.MULTILINE)


def run_validator(parquet: Path, workdir: Path) -> str:
    binary = VENV / "bin" / "focus-validator"
    if not binary.exists():
        pytest.fail(f"no FOCUS validator at {VENV}: run `make focus-validator` first")
    rules = workdir / "rules"
    rules.mkdir()
    shutil.copy(FOCUS_DATA / "model-1.3.0.1.json", rules)
    # 2.2.1 opens focus_validator/rules/currency_codes.csv relative to the working directory.
    package = next((VENV / "lib").glob("python3.*/site-packages/focus_validator"))
    codes = workdir / "focus_validator" / "rules"
    codes.mkdir(parents=True)
    shutil.copy(package / "rules" / "currency_codes.csv", codes)
    result = subprocess.run(
        [
            str(binary),
            "--data-file",
            str(parquet),
            "--validate-version",
            "1.3",
            "--rule-set-path",
            str(rules),
            "--block-download",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=240,
    )
    return result.stdout + result.stderr


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


def assert_validator_passes(warehouse: DuckDBWarehouse, tmp_path: Path, min_rows: int) -> None:
    table = warehouse.query("SELECT * FROM `acme_dev.cost_data_standard_1_3`")
    assert table.num_rows > min_rows
    parquet = tmp_path / "cost_data_standard_1_3.parquet"
    pq.write_table(table, parquet)

    output = run_validator(parquet, tmp_path)
    totals = TOTAL.search(output)
    assert totals, output[-3000:]
    total, passed, failed, _skipped = map(int, totals.groups())
    assert total == 764 and passed > 300
    quirks = set((FOCUS_DATA / "known_model_quirks.txt").read_text().split())
    failures = {rule for rule, _ in FAILED.findall(output)}
    assert len(failures) == failed
    assert failures <= quirks, f"rules failing beyond the known quirks: {failures - quirks}"
