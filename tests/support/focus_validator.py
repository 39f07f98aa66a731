"""The official FOCUS 1.3 validator (focus-validator 2.2.1, offline), for the tests.

It lives in its own Python 3.12 venv (`make focus-validator`, which `make test` runs first).
Tables go to it as typed Parquet (CSV would turn numeric-looking ids into integers) and every
failing rule must be one of the model's known quirks.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.support.genai import FOCUS_DATA
from tests.support.tools import CACHE_DIR
from warehouse.base import Warehouse

VENV = Path(os.environ.get("FOCUS_VALIDATOR_VENV") or CACHE_DIR / "focus-validator-venv")
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


def assert_validator_passes(warehouse: Warehouse, tmp_path: Path, min_rows: int) -> None:
    """Export the org acme's FOCUS table and fail on any rule outside the known quirks."""
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
