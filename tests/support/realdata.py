"""The public real samples in ../shared/realdata (see its SOURCES.md), read by tests.

Where they are: $PIPELINE_OPS_REALDATA, else `../shared/realdata` next to the repository
(`../../shared/realdata` for a worktree under wt/). A test that needs them skips, saying
where it looked, when they are absent; CI has them.

Everything here reads the files with the standard library and Decimal, independently of
the project's readers, so the expected figures owe nothing to the code under test.
"""

from __future__ import annotations

import csv
import json
import os
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOCUS_SAMPLE = "focus/FOCUS-1.0_focus_sample.csv"
# The sample is a MySQL dump: NULL is no value; Id is a column the dump added.
DUMP_NULL = "NULL"
DUMP_ONLY_COLUMNS = ("Id",)


def realdata_dir() -> Path:
    override = os.environ.get("PIPELINE_OPS_REALDATA")
    candidates = (
        [Path(override)]
        if override
        else [ROOT.parent / "shared" / "realdata", ROOT.parents[1] / "shared" / "realdata"]
    )
    for candidate in candidates:
        if (candidate / "SOURCES.md").is_file():
            return candidate
    pytest.skip(
        "real provider samples not found (looked in "
        + ", ".join(str(c) for c in candidates)
        + "); set PIPELINE_OPS_REALDATA to the realdata folder"
    )


def realdata_file(relative: str) -> Path:
    path = realdata_dir() / relative
    if not path.is_file():
        pytest.skip(f"{path} is missing from the real samples")
    return path


def realdata_json(relative: str) -> Any:
    return json.loads(realdata_file(relative).read_text())


def focus_sample(provider: str) -> list[dict[str, str | None]]:
    """The FOCUS 1.0 sample's rows of one ProviderName (AWS, Microsoft, Oracle), NULL as None."""
    with realdata_file(FOCUS_SAMPLE).open(newline="", encoding="utf-8") as handle:
        rows = [
            {k: None if v == DUMP_NULL else v for k, v in r.items() if k not in DUMP_ONLY_COLUMNS}
            for r in csv.DictReader(handle)
        ]
    chosen = [r for r in rows if r["ProviderName"] == provider]
    assert chosen, f"no {provider} rows in the FOCUS sample"
    return chosen


def totals_by_category(rows: list[dict[str, Any]], column: str) -> dict[str, Decimal]:
    """Sum of a cost column per ChargeCategory, exact (Decimal of the text as written)."""
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        value = row[column]
        sums[row["ChargeCategory"]] += Decimal(str(value)) if value is not None else Decimal(0)
    return dict(sums)
