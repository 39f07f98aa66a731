"""Step contexts on a real DuckDB file, with the engine's own lineage writer."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from processors.base import StepContext
from tests.support.genai import step_context
from warehouse.duckdb import DuckDBWarehouse

MakeCtx = Callable[..., StepContext]


@pytest.fixture
def warehouse(tmp_path: Path) -> DuckDBWarehouse:
    return DuckDBWarehouse(tmp_path / "warehouse.duckdb")


@pytest.fixture
def make_ctx(warehouse: DuckDBWarehouse) -> MakeCtx:
    return partial(step_context, warehouse)
