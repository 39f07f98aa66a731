"""Fixtures for the API tests: a real SQLite metadata DB and DuckDB file in tmp_path,
pipeline files written per test, and a recording dispatcher instead of Celery."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from pipeline.bootstrap import Services, build_services
from pipeline.settings import Settings
from pipeline.storage.db import upgrade
from tests.support.api import ADMIN_KEY, RecordingDispatcher, write_pipelines


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        var_dir=tmp_path / "var",
        database_url=f"sqlite:///{tmp_path / 'meta.db'}",
        redis_url="redis://127.0.0.1:1/0",
        warehouse_url=f"duckdb:///{tmp_path / 'warehouse.duckdb'}",
        configs_dir=write_pipelines(tmp_path / "configs"),
        admin_key=ADMIN_KEY,
        eager=True,
        public_base_url="http://api.test",
    )


@pytest.fixture
def dispatcher() -> RecordingDispatcher:
    return RecordingDispatcher()


@pytest.fixture
def services(settings: Settings, dispatcher: RecordingDispatcher) -> Services:
    upgrade(settings.database_url)
    return build_services(settings, dispatcher)


@pytest.fixture
def app(services: Services) -> Flask:
    return create_app(services=services)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def org_key(services: Services) -> str:
    return services.orgs.create("acme", "Acme Corp")


@pytest.fixture
def other_key(services: Services) -> str:
    return services.orgs.create("globex", "Globex")


@pytest.fixture
def auth(org_key: str) -> dict[str, str]:
    return {"X-API-Key": org_key}


@pytest.fixture
def other_auth(other_key: str) -> dict[str, str]:
    return {"X-API-Key": other_key}
