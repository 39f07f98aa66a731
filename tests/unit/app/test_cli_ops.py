"""The schedules and notifications commands (click's runner), and the backfill's Ctrl-C guard."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli import main
from app.cli_backfill import deferred_interrupt
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
    args = ["notifications", "set", "acme", "--webhook", "https://hooks.acme.test/x"]
    first = cli.invoke(main, [*args, "--email", "ops@acme.test", "--on-success"])
    assert first.exit_code == 0, first.output
    assert "webhook_secret: whsec_" in first.output
    assert "events:   failure, success" in first.output
    again = cli.invoke(main, args)
    assert "webhook_secret" not in again.output and "events:   failure\n" in again.output
    shown = cli.invoke(main, ["notifications", "show", "acme"])
    assert "email:    -" in shown.output  # `set` replaces: the e-mail channel is gone
    bad = cli.invoke(main, ["notifications", "set", "acme", "--email", "nope"])
    assert bad.exit_code == 1 and "not an e-mail address" in bad.output


def test_backfill_rejects_a_reversed_range(cli: CliRunner) -> None:
    result = cli.invoke(
        main,
        [
            "backfill",
            "cli/unit/daily",
            "--org",
            "acme",
            "--from",
            "2026-01-05",
            "--to",
            "2026-01-01",
        ],
    )
    assert result.exit_code == 1 and "before --from" in result.output


def test_ctrl_c_during_a_start_waits_for_the_start_to_finish() -> None:
    finished, before = [], signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt), deferred_interrupt():
        os.kill(os.getpid(), signal.SIGINT)
        finished.append(True)  # still reached: the interrupt was held
    assert finished == [True]
    assert signal.getsignal(signal.SIGINT) is before
