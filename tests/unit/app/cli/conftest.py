"""The `cli` fixture of the command tests: click's runner over SQLite and a configs
directory holding one pipeline, cli/unit/daily, with org acme created."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli import main
from tasks.runtime import use_services

DAILY = """\
pipeline_id: cli_daily
name: Daily
provider: cli
domain: unit
schedule: "0 3 * * *"
steps:
  - step_id: only
    ps_type: generic.noop
"""


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    configs = tmp_path / "configs" / "cli" / "unit"
    configs.mkdir(parents=True)
    (configs / "daily.yml").write_text(DAILY)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'meta.db'}")
    monkeypatch.setenv("PIPELINE_OPS_CONFIGS_DIR", str(tmp_path / "configs"))
    monkeypatch.setenv("PIPELINE_OPS_QUOTA", "off")
    runner = CliRunner()
    assert runner.invoke(main, ["orgs", "create", "acme"]).exit_code == 0
    yield runner
    use_services(None)
