"""problem+json for every error, the error-to-status map, and the security headers."""

from __future__ import annotations

import logging
import socket
from dataclasses import replace

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import SECURITY_HEADERS, create_app
from pipeline.bootstrap import Services, build_services
from pipeline.settings import Settings
from pipeline.storage.db import upgrade
from pipeline_ops_core.errors import (
    AlreadyExistsError,
    ConfigError,
    ConflictError,
    IllegalTransitionError,
    NotFoundError,
    QuotaExceededError,
    RunValidationError,
    ServiceUnavailableError,
    SubscriptionInactiveError,
    TerminalError,
    TransientError,
    WarehouseLockTimeout,
)
from tests.support.api import RUN_URL, RecordingDispatcher, assert_problem


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unknown_route_is_a_404_problem(client: FlaskClient) -> None:
    assert_problem(client.get("/nope"), 404, "not_found")
    assert_problem(client.get("/pipelines"), 401, "unauthorized")


def test_wrong_method_is_a_405_problem(client: FlaskClient, auth: dict[str, str]) -> None:
    response = client.get(RUN_URL, headers=auth)
    assert_problem(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]
    assert_problem(client.delete("/health"), 405, "method_not_allowed")


@pytest.mark.parametrize(
    ("error", "status", "code", "extra"),
    [
        (NotFoundError("org 'x' not found"), 404, "not_found", {}),
        (ConfigError("bad", [("extract", "unknown key")]), 422, "invalid_config", {}),
        (RunValidationError("validation failed", "run-1"), 422, "run_validation_failed", {}),
        (ConflictError("active", existing_run_id="run-2"), 409, "run_active", {}),
        (AlreadyExistsError("exists"), 409, "already_exists", {}),
        (QuotaExceededError("concurrent", 2, 2, 30), 429, "quota_exceeded", {"limit": "x"}),
        (SubscriptionInactiveError("SUSPENDED"), 403, "subscription_inactive", {}),
        (ServiceUnavailableError("broker down"), 503, "service_unavailable", {}),
        (WarehouseLockTimeout("busy", retry_after=5), 503, "warehouse_busy", {"retry": "5"}),
        (TransientError("try later"), 503, "transient", {}),
        (IllegalTransitionError("completed -> running"), 422, "illegal_transition", {}),
        (TerminalError("end_date is before start_date"), 422, "terminal", {}),
    ],
)
def test_domain_errors_map_to_statuses(
    client: FlaskClient,
    auth: dict[str, str],
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    status: int,
    code: str,
    extra: dict[str, str],
) -> None:
    def refuse(request: object) -> None:
        raise error

    monkeypatch.setattr(services.runs, "start", refuse)

    response = client.post(RUN_URL, headers=auth)

    body = assert_problem(response, status, code)
    if isinstance(error, ConfigError):
        assert body["errors"] == [{"step": "extract", "message": "unknown key"}]
    if isinstance(error, RunValidationError):
        assert body["run_id"] == "run-1"
    if isinstance(error, ConflictError):
        assert body["existing_run_id"] == "run-2"
    if "limit" in extra:
        assert (body["limit"], body["limit_value"], body["current"]) == ("concurrent", 2, 2)
        assert response.headers["Retry-After"] == "30"
    if "retry" in extra:
        assert response.headers["Retry-After"] == extra["retry"]


def test_unexpected_error_is_a_bare_500_and_is_logged(
    services: Services, auth: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(services=services)

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("api_key=sk-live-0123456789abcdef at /srv/secret/path.py")

    with caplog.at_level(logging.ERROR, logger="pipeline_ops.api"):
        response = app.test_client().get("/boom")

    body = assert_problem(response, 500, "internal_error")
    text = response.get_data(as_text=True)
    assert "sk-live" not in text and "RuntimeError" not in text and "/srv" not in text
    assert body["detail"] == "an unexpected error occurred"
    assert "RuntimeError" in caplog.text and "sk-live-0123456789abcdef" not in caplog.messages[0]


def test_unreachable_database_is_503(settings: Settings) -> None:
    down = replace(settings, database_url=f"postgresql://u:pw@127.0.0.1:{free_port()}/db")
    client = create_app(services=build_services(down, RecordingDispatcher())).test_client()

    response = client.post(RUN_URL, headers={"X-API-Key": "po_aaaaaaaaaaaa_" + "b" * 43})

    assert_problem(response, 503, "service_unavailable")
    assert "pw@" not in response.get_data(as_text=True)


def test_config_error_detail_hides_server_paths(
    client: FlaskClient, auth: dict[str, str], services: Services
) -> None:
    (services.settings.configs_dir / "test/demo/broken.yml").write_text("a: [", encoding="utf-8")
    services.catalog.refresh()

    response = client.post("/pipelines/run/acme/test/demo/broken", headers=auth)

    assert_problem(response, 422, "invalid_config")
    assert str(services.settings.configs_dir) not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("method", "url", "headers"),
    [
        ("get", "/health", {}),
        ("get", "/openapi.json", {}),
        ("get", "/nope", {}),
        ("post", RUN_URL, {}),
        ("post", RUN_URL, "auth"),
        ("get", "/pipelines/history/acme", "auth"),
        ("get", "/admin/orgs", {}),
    ],
)
def test_security_headers_on_every_response(
    client: FlaskClient, auth: dict[str, str], method: str, url: str, headers: object
) -> None:
    response = getattr(client, method)(url, headers=auth if headers == "auth" else headers)
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


def test_security_headers_on_a_500(services: Services) -> None:
    app: Flask = create_app(services=services)

    @app.get("/boom")
    def boom() -> str:
        raise ValueError("x")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"


def test_create_app_takes_the_body_limit_from_settings(services: Services) -> None:
    assert create_app(services=services).config["MAX_CONTENT_LENGTH"] == 1024 * 1024
    assert create_app(services=services).extensions["pipeline_ops"] is services


def test_create_app_builds_its_own_services(settings: Settings) -> None:
    upgrade(settings.database_url)  # the web process refuses a DB behind the code
    app = create_app(settings)
    built = app.extensions["pipeline_ops"]
    assert built.settings is settings
    assert type(built.runs.dispatcher).__name__ == "CeleryDispatcher"
