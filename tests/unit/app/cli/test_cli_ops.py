"""The schedules and notifications commands (click's runner), and the backfill's Ctrl-C guard."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli import main
from app.cli.backfill import deferred_interrupt


def test_schedules_enable_list_disable(cli: CliRunner) -> None:
    enabled = cli.invoke(
        main, ["schedules", "enable", "cli/unit/daily", "--org", "acme", "--timezone", "UTC"]
    )
    assert enabled.exit_code == 0, enabled.output
    assert "enabled\tcron '0 3 * * *' (yaml)" in enabled.output
    listed = cli.invoke(main, ["schedules", "list", "--org", "acme"])
    assert "acme\tcli/unit/daily\tenabled" in listed.output
    disabled = cli.invoke(main, ["schedules", "disable", "cli/unit/daily", "--org", "acme"])
    assert disabled.exit_code == 0 and "\tdisabled\t" in disabled.output
    bad = cli.invoke(
        main, ["schedules", "enable", "cli/unit/daily", "--org", "acme", "--cron", "x"]
    )
    assert bad.exit_code == 1 and "bad cron" in bad.output
    dispatched = cli.invoke(main, ["schedules", "dispatch"])
    assert dispatched.exit_code == 0 and "started 0" in dispatched.output


def test_notifications_set_shows_a_new_secret_once(cli: CliRunner) -> None:
    args = ["notifications", "set", "--org", "acme", "--webhook", "https://hooks.acme.test/x"]
    first = cli.invoke(main, [*args, "--email", "ops@acme.test", "--on-success"])
    assert first.exit_code == 0, first.output
    assert "webhook_secret: whsec_" in first.output
    assert "events:   failure, success" in first.output
    again = cli.invoke(main, args)
    assert "webhook_secret" not in again.output and "events:   failure\n" in again.output
    shown = cli.invoke(main, ["notifications", "show", "--org", "acme"])
    assert "email:    -" in shown.output  # `set` replaces: the e-mail channel is gone
    bad = cli.invoke(main, ["notifications", "set", "--org", "acme", "--email", "nope"])
    assert bad.exit_code == 1 and "not an e-mail address" in bad.output


def test_backfill_rejects_a_reversed_range(cli: CliRunner) -> None:
    result = cli.invoke(
        main,
        [
            "backfill",
            "cli/unit/daily",
            "--org",
            "acme",
            "--start-date",
            "2026-01-05",
            "--end-date",
            "2026-01-01",
        ],
    )
    assert result.exit_code == 1 and "before --start-date" in result.output


def _completed_run(tmp_path: Path) -> str:
    """A run of cli/unit/daily executed in this process; its one noop step writes nothing."""
    from datetime import date

    from pipeline.bootstrap import build_services
    from pipeline.runs.service import RunRequest
    from pipeline.settings import Settings
    from tests.support.doubles import NullDispatcher

    svc = build_services(Settings.from_env(), NullDispatcher())
    day = date(2026, 1, 1)
    run_id = str(svc.runs.start(RunRequest("acme", "cli", "unit", "daily", day, day)).run_id)
    run, _ = svc.executor.load(run_id, "only")
    svc.executor.run(run, "only", 1)
    return run_id


def test_status_takes_an_8_character_prefix_and_shows_rows_and_warnings(
    cli: CliRunner, tmp_path: Path
) -> None:
    run_id = _completed_run(tmp_path)

    shown = cli.invoke(main, ["status", run_id[:8]])
    scoped = cli.invoke(main, ["status", run_id[:8], "--org", "acme", "--json"])

    assert shown.exit_code == 0, shown.output
    assert f"run_id:    {run_id}" in shown.output
    assert "status:    completed" in shown.output
    assert "rows:      0" in shown.output
    assert "warning:   the run completed but wrote no rows for 2026-01-01..2026-01-01" in (
        shown.output
    )
    assert scoped.exit_code == 0, scoped.output
    assert '"rows_written": 0' in scoped.output and run_id in scoped.output
    elsewhere = cli.invoke(main, ["orgs", "create", "globex"])
    assert elsewhere.exit_code == 0
    other_org = cli.invoke(main, ["status", run_id[:8], "--org", "globex"])
    assert other_org.exit_code == 1 and f"run {run_id[:8]} not found" in other_org.output


def test_status_refuses_a_short_prefix_with_exit_2(cli: CliRunner, tmp_path: Path) -> None:
    run_id = _completed_run(tmp_path)

    result = cli.invoke(main, ["status", run_id[:7]])

    assert result.exit_code == 2
    assert f"run id '{run_id[:7]}' is too short" in result.output


@pytest.mark.parametrize(
    ("dates", "message"),
    [
        (["--date", "2999-01-01"], "error: end_date 2999-01-01 is after today ("),
        (["--start-date", "1999-06-01", "--end-date", "2000-01-01"], "is before 2000-01-01"),
    ],
)
def test_run_refuses_dates_outside_the_bounds_and_records_nothing(
    cli: CliRunner, tmp_path: Path, dates: list[str], message: str
) -> None:
    from pipeline.storage.db import make_engine
    from pipeline.storage.run_store import SqlRunStore
    from tests.support.records import count_runs

    result = cli.invoke(main, ["run", "cli/unit/daily", "--org", "acme", *dates])

    assert result.exit_code == 1
    assert message in result.output
    assert count_runs(SqlRunStore(make_engine(f"sqlite:///{tmp_path / 'meta.db'}"))) == 0


def test_ctrl_c_during_a_start_waits_for_the_start_to_finish() -> None:
    finished, before = [], signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt), deferred_interrupt():
        os.kill(os.getpid(), signal.SIGINT)
        finished.append(True)  # still reached: the interrupt was held
    assert finished == [True]
    assert signal.getsignal(signal.SIGINT) is before
