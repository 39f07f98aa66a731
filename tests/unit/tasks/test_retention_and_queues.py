"""Beat's retention task (PIPELINE_OPS_RETENTION_DAYS), the control queue's routes, and
beat's heartbeat scheduler (fakeredis)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import fakeredis
import pytest

from pipeline.bootstrap import Services, build_services
from pipeline.observability.heartbeats import BEAT_KEY, read_heartbeats
from pipeline.queue import (
    CONTROL_QUEUE,
    DISPATCH_SCHEDULES,
    PRUNE,
    REAP,
    RUN_STEP,
    SEND_NOTIFICATION,
    celery_app,
)
from pipeline.runs.service import RunRequest
from pipeline.settings import Settings
from pipeline.storage.db import upgrade
from tasks.beat import prune_old_runs
from tasks.runtime import use_services
from tests.support.doubles import ManualClock, RecordingDispatcher

PIPELINE = """\
pipeline_id: keep_daily
name: Daily
provider: keep
domain: unit
steps:
  - step_id: only
    ps_type: generic.noop
"""


def _services(tmp_path: Path, clock: ManualClock, retention: int | None) -> Services:
    (tmp_path / "configs" / "keep" / "unit").mkdir(parents=True, exist_ok=True)
    (tmp_path / "configs" / "keep" / "unit" / "daily.yml").write_text(PIPELINE)
    settings = Settings.from_env({
        "PIPELINE_OPS_VAR_DIR": str(tmp_path),
        "PIPELINE_OPS_CONFIGS_DIR": str(tmp_path / "configs"),
        "REDIS_URL": "redis://127.0.0.1:1/0", "PIPELINE_OPS_QUOTA": "off",
    })  # fmt: skip
    settings = replace(settings, retention_days=retention)
    upgrade(settings.database_url)
    return build_services(settings, RecordingDispatcher(), clock=clock, db_time=clock)


@pytest.fixture
def reset() -> Iterator[None]:
    yield
    use_services(None)


def _ended_run(svc: Services, day: int) -> str:
    request = RunRequest("acme", "keep", "unit", "daily", date(2026, 1, day), date(2026, 1, day))
    run_id = svc.runs.start(request).run_id
    svc.runs.fail(run_id, "stopped for the test")
    return run_id


def test_the_daily_prune_deletes_runs_ended_before_the_retention_window(
    tmp_path: Path, reset: None
) -> None:
    clock = ManualClock(datetime.now(UTC) - timedelta(days=40))
    svc = _services(tmp_path, clock, retention=30)
    svc.orgs.create("acme")
    old = _ended_run(svc, 1)
    clock.advance(timedelta(days=35).total_seconds())
    recent = _ended_run(svc, 2)
    use_services(svc)

    report = prune_old_runs.apply().get()

    assert report["rows"]["runs"] == 1
    assert svc.store.get_run(old) is None
    assert svc.store.get_run(recent) is not None


def test_without_a_retention_setting_the_task_keeps_everything(tmp_path: Path, reset: None) -> None:
    clock = ManualClock(datetime.now(UTC) - timedelta(days=300))
    svc = _services(tmp_path, clock, retention=None)
    svc.orgs.create("acme")
    old = _ended_run(svc, 1)
    use_services(svc)

    assert prune_old_runs.apply().get() == {"skipped": "PIPELINE_OPS_RETENTION_DAYS is not set"}
    assert svc.store.get_run(old) is not None


def test_beat_schedules_the_prune_only_when_retention_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import celeryconfig

    try:
        monkeypatch.delenv("PIPELINE_OPS_RETENTION_DAYS", raising=False)
        assert "prune-old-runs" not in importlib.reload(celeryconfig).beat_schedule
        monkeypatch.setenv("PIPELINE_OPS_RETENTION_DAYS", "90")
        schedule = importlib.reload(celeryconfig).beat_schedule
        assert schedule["prune-old-runs"]["task"] == PRUNE
        monkeypatch.setenv("PIPELINE_OPS_RETENTION_DAYS", "0")
        with pytest.raises(ValueError, match="PIPELINE_OPS_RETENTION_DAYS must be at least 1"):
            importlib.reload(celeryconfig)
    finally:
        monkeypatch.delenv("PIPELINE_OPS_RETENTION_DAYS", raising=False)
        importlib.reload(celeryconfig)


def test_control_tasks_have_their_own_queue_and_steps_stay_on_the_default() -> None:
    router = celery_app.amqp.router
    for name in (REAP, DISPATCH_SCHEDULES, SEND_NOTIFICATION, PRUNE):
        assert router.route({}, name)["queue"].name == CONTROL_QUEUE, name
    assert router.route({}, RUN_STEP)["queue"].name == "celery"


def test_beat_writes_its_heartbeat_from_its_tick(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasks import heartbeat

    server = fakeredis.FakeServer()
    monkeypatch.setattr(heartbeat, "_client", lambda: fakeredis.FakeRedis(server=server))
    scheduler = heartbeat.HeartbeatScheduler(
        app=celery_app, schedule_filename=str(tmp_path / "beat-schedule"), lazy=True
    )
    reader = fakeredis.FakeRedis(server=server)
    assert read_heartbeats(reader).beat is None

    scheduler.setup_schedule()
    interval = scheduler.tick()

    beat = read_heartbeats(reader).beat
    assert beat is not None and beat.age_seconds < 5
    assert 0 < reader.ttl(BEAT_KEY) <= 3600
    assert interval <= heartbeat.HEARTBEAT_EVERY
