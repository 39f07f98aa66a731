"""`pipeline-ops runs rerun [--from-failed]`: the real console script as a subprocess, its
tasks in-process (PIPELINE_OPS_EAGER, as `run --local`), so the test process's Celery app
is never switched to eager mode."""

from __future__ import annotations

import re
from pathlib import Path

from tests.integration.test_cli import UUID_RE, CliEnv, make_env

TWO_STEPS = """\
pipeline_id: cli_two_steps
name: A step, then one that reads a file that is not there yet
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
SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "demo" / "usage.csv"


def attempts(cli: CliEnv, run_id: str) -> list[tuple[object, ...]]:
    return cli.sql(
        "SELECT step_id, status FROM org_meta_step_logs WHERE run_id = ? ORDER BY id", run_id
    )


def test_rerun_from_failed_runs_the_failed_step_only(tmp_path: Path) -> None:
    cli = make_env(tmp_path / "env")
    source = tmp_path / "usage.csv"
    pipeline = cli.root / "configs" / "cli" / "unit" / "two.yml"
    pipeline.parent.mkdir(parents=True)
    pipeline.write_text(TWO_STEPS.replace("{path}", str(source)))
    assert cli("orgs", "create", "acme").returncode == 0
    ran = cli("run", "cli/unit/two", "--org", "acme", "--date", "2026-01-01", "--local")
    assert ran.returncode == 1 and "file not found" in ran.stdout + ran.stderr
    (failed,) = cli.sql("SELECT run_id FROM org_meta_pipeline_runs WHERE status = 'failed'")[0]
    assert attempts(cli, str(failed)) == [("first", "completed"), ("second", "failed")]

    eager = {**cli.env, "PIPELINE_OPS_EAGER": "1"}
    other = CliEnv(cli.root, eager)
    assert other("orgs", "create", "globex").returncode == 0
    theirs = other("runs", "rerun", str(failed), "--org", "globex", "--from-failed")
    assert theirs.returncode == 1 and "not found" in theirs.stderr
    source.write_bytes(SAMPLE.read_bytes())  # the cause is fixed
    again = other("runs", "rerun", str(failed)[:8], "--org", "acme", "--from-failed")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "reused steps: first" in again.stdout
    found = re.search(rf"^run_id: ({UUID_RE})$", again.stdout, re.M)
    assert found, again.stdout
    new = found.group(1)
    assert attempts(cli, new) == [("second", "completed")]  # `first` was not run again
    assert cli.sql("SELECT status, trigger FROM org_meta_pipeline_runs WHERE run_id = ?", new) == [
        ("completed", "rerun")
    ]
    whole = other("runs", "rerun", new, "--org", "acme", "--from-failed")
    assert whole.returncode == 1 and "only a failed or cancelled run" in whole.stderr
    assert cli.run_count() == 2  # the refusals recorded nothing
