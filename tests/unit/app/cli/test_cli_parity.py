"""The run and pipeline commands on par with the API, --version, the global --output, and
the deprecated spellings of the org and the dates (click's runner, SQLite, in-process)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli import main
from tests.unit.app.cli.test_cli_ops import _completed_run

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(\+00:00|Z)$")


def _json(runner: CliRunner, *args: str) -> dict:
    result = runner.invoke(main, ["--output", "json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("pipeline-ops, version ")


def test_runs_list_show_logs_steps_transitions_as_json_with_iso_times(
    cli: CliRunner, tmp_path: Path
) -> None:
    run_id = _completed_run(tmp_path)

    listed = _json(cli, "runs", "list", "--org", "acme")
    assert [r["run_id"] for r in listed["runs"]] == [run_id]
    assert listed["runs"][0]["status"] == "completed"
    assert ISO.match(listed["runs"][0]["created_at"]) and ISO.match(listed["runs"][0]["ended_at"])
    shown = _json(cli, "runs", "show", run_id[:8], "--org", "acme")
    assert shown["run_id"] == run_id and shown["rows_written"] == 0
    assert shown["steps"] == [
        {"step_id": "only", "status": "completed", "attempts": 1, "rows_written": 0}
    ]
    lines = _json(cli, "runs", "logs", run_id, "--org", "acme")["lines"]
    assert lines and all(ISO.match(line["ts"]) for line in lines)
    steps = _json(cli, "runs", "steps", run_id, "--org", "acme")["steps"]
    assert [(s["step_id"], s["attempt"], s["status"]) for s in steps] == [("only", 1, "completed")]
    moves = _json(cli, "runs", "transitions", run_id, "--org", "acme")["transitions"]
    assert moves[-1]["to_status"] == "completed" and ISO.match(moves[-1]["at"])

    table = cli.invoke(main, ["runs", "list", "--org", "acme"])
    assert table.exit_code == 0 and table.output.startswith("RUN_ID")
    assert run_id in table.output
    other = cli.invoke(main, ["orgs", "create", "globex"])
    assert other.exit_code == 0
    hidden = cli.invoke(main, ["runs", "show", run_id, "--org", "globex"])
    assert hidden.exit_code == 1 and f"run {run_id} not found" in hidden.output


def test_rerun_refuses_an_active_run_and_cancel_an_ended_one(
    cli: CliRunner, tmp_path: Path
) -> None:
    from datetime import date

    from pipeline.bootstrap import build_services
    from pipeline.runs.service import RunRequest
    from pipeline.settings import Settings
    from tests.support.doubles import NullDispatcher

    ended = _completed_run(tmp_path)
    svc = build_services(Settings.from_env(), NullDispatcher())
    day = date(2026, 1, 2)
    queued = svc.runs.start(RunRequest("acme", "cli", "unit", "daily", day, day)).run_id

    again = cli.invoke(main, ["runs", "rerun", queued, "--org", "acme"])
    assert again.exit_code == 1
    assert f"run {queued} is queued; only an ended run can be re-run" in again.output
    cancel = cli.invoke(main, ["runs", "cancel", ended, "--org", "acme"])
    assert cancel.exit_code == 1
    assert len(_json(cli, "runs", "list", "--org", "acme")["runs"]) == 2  # nothing started
    other = cli.invoke(main, ["orgs", "create", "globex"])
    assert other.exit_code == 0
    elsewhere = cli.invoke(main, ["runs", "rerun", ended, "--org", "globex"])
    assert elsewhere.exit_code == 1 and f"run {ended} not found" in elsewhere.output


def test_pipelines_list_and_show(cli: CliRunner) -> None:
    listed = _json(cli, "pipelines", "list")
    assert [p["path"] for p in listed["pipelines"]] == ["cli/unit/daily"]
    shown = _json(cli, "pipelines", "show", "cli/unit/daily")
    assert shown["pipeline_id"] == "cli_daily" and shown["schedule"] == "0 3 * * *"
    assert [s["step_id"] for s in shown["steps"]] == ["only"]
    missing = cli.invoke(main, ["pipelines", "show", "cli/unit/nope"])
    assert missing.exit_code == 1 and "not found" in missing.output
    bad = cli.invoke(main, ["pipelines", "show", "nope"])
    assert bad.exit_code == 2 and "PROVIDER/DOMAIN/PIPELINE" in bad.output


def test_the_positional_org_still_works_and_says_it_is_deprecated(cli: CliRunner) -> None:
    new = cli.invoke(main, ["--output", "json", "quota", "show", "--org", "acme"])
    old = cli.invoke(main, ["quota", "show", "acme", "--json"])

    assert new.exit_code == old.exit_code == 0
    assert "deprecated" not in new.stderr
    assert old.stderr.strip() == "deprecated: the org as a positional argument; use --org acme"
    assert json.loads(new.stdout)["org_slug"] == json.loads(old.stdout)["org_slug"] == "acme"
    both = cli.invoke(main, ["quota", "show", "acme", "--org", "acme"])
    assert both.exit_code == 2 and "expected no argument" in both.output
    none = cli.invoke(main, ["quota", "show"])
    assert none.exit_code == 2 and "--org ORG" in none.output


def test_backfill_from_and_to_are_deprecated_aliases(cli: CliRunner) -> None:
    args = ["backfill", "cli/unit/daily", "--org", "acme"]
    old = cli.invoke(main, [*args, "--from", "2026-01-05", "--to", "2026-01-01"])
    mixed = cli.invoke(main, [*args, "--from", "2026-01-05", "--start-date", "2026-01-05"])
    missing = cli.invoke(main, [*args, "--end-date", "2026-01-05"])

    assert "deprecated: --from; use --start-date" in old.stderr
    assert old.exit_code == 1 and "before --start-date" in old.output
    assert mixed.exit_code == 2 and "give --start-date only" in mixed.output
    assert missing.exit_code == 2 and "--start-date is required" in missing.output


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (["orgs", "list"], "orgs"),
        (["schedules", "list", "--org", "acme"], "schedules"),
        (["schedules", "dispatches", "cli/unit/daily", "--org", "acme"], "dispatches"),
        (["subscriptions", "list", "--org", "acme"], "subscriptions"),
        (["notifications", "show", "--org", "acme"], "org_slug"),
        (["quota", "show", "--org", "acme"], "org_slug"),
        (["runs", "list", "--org", "acme"], "runs"),
        (["pipelines", "list"], "pipelines"),
        (["credentials", "list", "--org", "acme"], None),
    ],
)
def test_every_read_command_prints_json_with_output_json(
    cli: CliRunner, args: list[str], key: str | None
) -> None:
    result = cli.invoke(main, ["--output", "json", *args])

    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert isinstance(body, list) if key is None else key in body
