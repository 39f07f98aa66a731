"""Fixtures for the pipeline core tests: a real SQLite metadata DB in tmp_path.

No `__init__.py` here on purpose: it would make this folder a package named `pipeline`
and shadow the real one. Helpers are fixtures (not imports) for the same reason.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:  # so plain `pytest` finds the packages without an install
    sys.path.insert(0, str(ROOT))

from pipeline.bootstrap import Services, build_services  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from pipeline.storage.db import make_engine, upgrade  # noqa: E402
from pipeline.storage.run_store import SqlRunStore  # noqa: E402
from tests.support.doubles import ManualClock as FakeClock  # noqa: E402
from tests.support.doubles import RecordingDispatcher  # noqa: E402

# A fan-in pipeline for the run service: a and b in parallel, then c.
FAN_IN = """\
pipeline_id: test_fan_in
name: Fan-in test pipeline
provider: test
domain: unit
steps:
  - step_id: a
    ps_type: generic.noop
    config: {day: "${start_date}", last: "${end_date}", org: "{org_slug}", run: "${run_id}"}
  - step_id: b
    ps_type: generic.noop
    config: {dataset: "${org_dataset}", credential: "${credential_id}"}
  - step_id: c
    ps_type: generic.noop
    depends_on: [a, b]
    timeout_seconds: 45
    retry: {max_attempts: 4, backoff_seconds: 7}
"""


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    upgrade(url)
    return url


@pytest.fixture
def store(db_url: str, clock: FakeClock) -> SqlRunStore:
    s = SqlRunStore(make_engine(db_url), clock=clock, db_time=clock)
    s.create_org("acme", "Acme", "aaaaaaaaaaaa", "0" * 64)
    s.create_org("globex", "Globex", "bbbbbbbbbbbb", "1" * 64)
    return s


@pytest.fixture
def new_run(store: SqlRunStore) -> Callable[..., str]:
    """new_run(key=..., org=..., pipeline_id=...) inserts a pending run; returns its id."""
    counter = iter(range(1_000_000))

    def _new(
        key: str | None = None, org: str = "acme", pipeline_id: str = "test_pipe", **extra: Any
    ) -> str:
        n = next(counter)
        run_id = extra.pop("run_id", f"00000000-0000-0000-0000-{n:012d}")
        values = {
            "run_id": run_id,
            "org_slug": org,
            "pipeline_id": pipeline_id,
            "pipeline_path": "test/unit/pipe",
            "idempotency_key": key or f"{org}|{pipeline_id}|default|{n}",
            "credential_id": "default",
            "start_date": date(2026, 1, 1),
            "end_date": date(2026, 1, 1),
            "params": {},
            **extra,
        }
        store.create_run(values)
        return run_id

    return _new


@pytest.fixture
def dispatcher() -> RecordingDispatcher:
    return RecordingDispatcher()


@pytest.fixture
def configs_dir(tmp_path: Path) -> Path:
    target = tmp_path / "configs"
    path = target / "test" / "unit" / "fan_in.yml"
    path.parent.mkdir(parents=True)
    path.write_text(FAN_IN)
    return target


@pytest.fixture
def write_pipeline(configs_dir: Path) -> Callable[[str, str], None]:
    """write_pipeline("provider/domain/name", yaml_text) adds a pipeline file."""

    def _write(key: str, text: str) -> None:
        provider, domain, name = key.split("/")
        path = configs_dir / provider / domain / f"{name}.yml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))

    return _write


@pytest.fixture
def settings(tmp_path: Path, configs_dir: Path) -> Settings:
    return Settings(
        var_dir=tmp_path / "var",
        database_url=f"sqlite:///{tmp_path / 'services.db'}",
        redis_url="redis://127.0.0.1:1/0",
        warehouse_url=f"duckdb:///{tmp_path / 'warehouse.duckdb'}",
        configs_dir=configs_dir,
        queue_timeout=600,
        heartbeat_timeout=60,
    )


@pytest.fixture
def services(settings: Settings, dispatcher: RecordingDispatcher, clock: FakeClock) -> Services:
    upgrade(settings.database_url)
    svc = build_services(settings, dispatcher, clock=clock, db_time=clock)
    svc.orgs.create("acme")
    svc.orgs.create("globex")
    return svc
