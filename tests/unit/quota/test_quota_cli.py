"""`pipeline-ops orgs set-limits` and `pipeline-ops quota show`, and CLI runs they refuse."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import fakeredis
import pytest
from click.testing import CliRunner, Result

from app.cli import main
from quota.mirror import RedisMirror

PIPELINE = """\
pipeline_id: quota_cli_one
name: One noop step
provider: quota
domain: cli
steps:
  - step_id: only
    ps_type: generic.noop
"""


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    configs = tmp_path / "configs"
    (configs / "quota" / "cli").mkdir(parents=True)
    (configs / "quota" / "cli" / "one.yml").write_text(PIPELINE)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'meta.db'}")
    monkeypatch.setenv("PIPELINE_OPS_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("PIPELINE_OPS_CONFIGS_DIR", str(configs))
    # REDIS_URL stays the session's: the first `run` below configures the Celery app for
    # the whole test session. The quota mirror gets an in-memory Redis that is down.
    down = fakeredis.FakeServer()
    down.connected = False
    use_redis(monkeypatch, down)
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(main, list(args), catch_exceptions=False)

    assert invoke("orgs", "create", "acme").exit_code == 0
    return invoke


def use_redis(monkeypatch: pytest.MonkeyPatch, server: fakeredis.FakeServer) -> None:
    def from_url(cls: type[RedisMirror], url: str, **kwargs: Any) -> RedisMirror:
        return cls(fakeredis.FakeRedis(server=server, decode_responses=True), **kwargs)

    monkeypatch.setattr(RedisMirror, "from_url", classmethod(from_url))


def count_runs(tmp_path: Path) -> int:
    con = sqlite3.connect(tmp_path / "meta.db")
    try:
        return int(con.execute("SELECT count(*) FROM org_meta_pipeline_runs").fetchone()[0])
    finally:
        con.close()


def test_set_limits_then_show(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("orgs", "set-limits", "--org", "acme", "--daily", "10", "--monthly", "200")
    assert result.exit_code == 0, result.output
    result = cli("orgs", "set-limits", "--org", "acme", "--concurrent", "3", "--status", "trial")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "org_slug: acme",
        "status: TRIAL",
        "daily_limit: 10",
        "monthly_limit: 200",
        "concurrent_limit: 3",
        "source: database",
    ]

    shown = cli("quota", "show", "--org", "acme")

    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert "status:    TRIAL (plan source: database)" in lines
    assert "limits:    daily 10, monthly 200, concurrent 3" in lines
    assert "running:   0 of 3" in lines
    assert "leases:    0 active" in lines
    assert any(line.startswith("mirror:    degraded: redis unavailable") for line in lines)
    report = json.loads(cli("quota", "show", "--org", "acme", "--json").output)
    assert report["plan"]["concurrent_limit"] == 3 and report["usage"]["leases"] == []


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ("orgs", "set-limits", "--org", "nobody", "--daily", "1"),
            1,
            "error: org 'nobody' not found",
        ),
        (("orgs", "set-limits", "--org", "acme"), 2, "give at least one of --daily, --monthly"),
        (
            ("orgs", "set-limits", "--org", "acme", "--daily", "-1"),
            2,
            "-1 is not in the range x>=0",
        ),
        (
            ("orgs", "set-limits", "--org", "acme", "--status", "paused"),
            2,
            "'paused' is not one of",
        ),
        (("quota", "show", "--org", "nobody"), 1, "error: org 'nobody' not found"),
    ],
)
def test_bad_input_exits_non_zero_with_a_message(
    cli,  # type: ignore[no-untyped-def]
    args: tuple[str, ...],
    code: int,
    message: str,
) -> None:
    result = cli(*args)
    assert result.exit_code == code
    assert message in result.output


def test_a_run_over_quota_exits_1_and_records_nothing(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In-process runs (--local): no broker is running here, and an unreachable broker is
    # refused before the quota is asked (tests/integration/test_broker_down.py).
    monkeypatch.setenv("PIPELINE_OPS_EAGER", "1")
    cli("orgs", "set-limits", "--org", "acme", "--concurrent", "0")
    result = cli("run", "quota/cli/one", "--org", "acme", "--date", "2026-01-01", "--local")
    assert result.exit_code == 1
    assert "error: concurrent quota exceeded: 0 of 0 used; retry in 10s" in result.output, (
        result.output
    )

    cli("orgs", "set-limits", "--org", "acme", "--concurrent", "5", "--status", "SUSPENDED")
    result = cli("run", "quota/cli/one", "--org", "acme", "--date", "2026-01-01", "--local")
    assert result.exit_code == 1
    assert "error: the subscription of acme is SUSPENDED: runs are not admitted" in result.output
    assert count_runs(tmp_path) == 0


def test_show_includes_the_mirrors_view_when_redis_answers(
    cli,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_redis(monkeypatch, fakeredis.FakeServer())
    cli("orgs", "set-limits", "--org", "acme", "--concurrent", "2")

    lines = cli("quota", "show", "--org", "acme").output.splitlines()

    assert "mirror:    ok (0 leases, 0 runs today, 0 this month)" in lines
