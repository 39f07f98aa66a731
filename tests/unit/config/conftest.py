"""Fixtures for the pipeline config tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from pipeline_config_helpers import VALID_YAML


@pytest.fixture
def write(tmp_path: Path):
    """write("a/b/c.yml", text) -> the created path under tmp_path."""

    def _write(relative: str, text: str = VALID_YAML) -> Path:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return _write
