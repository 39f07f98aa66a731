"""`pipeline-ops runs rerun [--from-failed]` (click's runner, tasks in this process)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli import main
from pipeline.bootstrap import cli_services
from tasks.runtime import use_services

TWO_STEPS = """\
pipeline_id: cli_two_steps
name: A step, then one that reads a file that is not there
provider: cli
domain: unit
steps:
  - step_id: first
    ps_type: generic.noop
  - step_id: second
    ps_type: generic.file_extract
    depends_on: [first]
    config: {path: "{path}", destination_table: cli_rows, date_column: usage_date}
"""
SAMPLE = Path(__file__).resolve().parents[4] / "sample_data" / "demo" / "usage.csv"


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    configs = tmp_path / "configs" / "cli" / "unit"
    configs.mkdir(parents=True)
    (configs / "two.yml").write_text(TWO_STEPS.replace("{path}", str(tmp_path / "usage.csv")))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'meta.db'}")
    monkeypatch.setenv("WAREHOUSE_URL", f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    monkeypatch.setenv("PIPELINE_OPS_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("PIPELINE_OPS_CONFIGS_DIR", str(tmp_path / "configs"))
    monkeypatch.setenv("PIPELINE_OPS_QUOTA", "off")
    monkeypatch.setenv("PIPELINE_OPS_EAGER", "1")
    runner = CliRunner()
    assert runner.invoke(main, ["orgs", "create", "acme"]).exit_code == 0
    yield runner
    use_services(None)


def run_id(output: str) -> str:
    found = re.search(r"run_id: (\S+)", output)
    assert found, output
    return found.group(1)


def only_run(status: str) -> str:
    runs = [r for r in cli_services().store.list_runs("acme") if r["status"] == status]
    assert len(runs) == 1, runs
    return str(runs[0]["run_id"])


def test_rerun_from_failed_runs_the_failed_step_only(cli: CliRunner, tmp_path: Path) -> None:
    args = ["run", "cli/unit/two", "--org", "acme", "--date", "2026-01-01", "--local"]
    ran = cli.invoke(main, args)
    assert ran.exit_code == 1 and "file not found" in ran.output, ran.output
    failed = only_run("failed")
    (tmp_path / "usage.csv").write_bytes(SAMPLE.read_bytes())  # the cause is fixed
    refused = cli.invoke(main, ["runs", "rerun", failed, "--org", "globex", "--from-failed"])
    assert refused.exit_code == 1 and "not found" in refused.output
    again = cli.invoke(main, ["runs", "rerun", failed[:8], "--org", "acme", "--from-failed"])
    assert again.exit_code == 0, again.output
    assert "reused steps: first" in again.output
    new = run_id(again.output)
    store = cli_services().store
    assert [(a["step_id"], a["status"]) for a in store.step_attempts(new)] == [
        ("second", "completed")
    ]
    assert store.get_run(new)["status"] == "completed"  # type: ignore[index]
    whole = cli.invoke(main, ["runs", "rerun", new, "--org", "acme", "--from-failed"])
    assert whole.exit_code == 1 and "only a failed or cancelled run" in whole.output
