"""GET /health and GET /openapi.json."""

from __future__ import annotations

import socket
from dataclasses import replace

import fakeredis
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.api.openapi import build_spec
from pipeline.bootstrap import build_services
from pipeline.settings import Settings
from pipeline.storage.db import upgrade
from tests.support.api import RecordingDispatcher


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _client(settings: Settings) -> FlaskClient:
    return create_app(services=build_services(settings, RecordingDispatcher())).test_client()


def test_health_is_ok_with_a_local_database_and_duckdb(client: FlaskClient) -> None:
    response = client.get("/health")

    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ok",
        "checks": {"database": "ok", "redis": "skipped (eager mode)", "warehouse": "ok"},
        "heartbeats": {"workers": {}, "beat": None},
    }
    assert client.get("/health/ready").get_json() == response.get_json()
    assert client.get("/health/live").get_json() == {"status": "ok"}


def test_health_needs_no_key(client: FlaskClient) -> None:
    assert client.get("/health", headers={"X-API-Key": "garbage"}).status_code == 200


def test_health_is_503_when_the_database_is_unreachable(settings: Settings) -> None:
    url = f"postgresql://health:sup3rs3cret@127.0.0.1:{free_port()}/meta"

    response = _client(replace(settings, database_url=url)).get("/health")

    assert response.status_code == 503
    data = response.get_json()
    assert data["status"] == "unavailable"
    assert data["checks"]["database"] != "ok"
    assert len(data["checks"]["database"]) <= 200
    assert (data["checks"]["redis"], data["checks"]["warehouse"]) == ("skipped (eager mode)", "ok")
    assert "sup3rs3cret" not in response.get_data(as_text=True)


def test_health_is_degraded_not_503_when_redis_is_unreachable(settings: Settings) -> None:
    upgrade(settings.database_url)
    live = replace(settings, eager=False, redis_url=f"redis://:r3dispw@127.0.0.1:{free_port()}/0")

    response = _client(live).get("/health")

    # The quota falls back to its SQL ledger: the instance can still serve.
    assert response.status_code == 200
    assert response.get_json()["status"] == "degraded"
    checks = response.get_json()["checks"]
    assert checks["database"] == "ok" and checks["redis"].startswith("ConnectionError")
    assert "r3dispw" not in response.get_data(as_text=True)


def test_health_pings_redis_when_not_eager(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    upgrade(settings.database_url)
    server = fakeredis.FakeServer()
    monkeypatch.setattr(
        redis.Redis,
        "from_url",
        classmethod(lambda cls, url, **kw: fakeredis.FakeRedis(server=server)),
    )

    response = _client(replace(settings, eager=False)).get("/health")

    assert response.status_code == 200
    assert response.get_json()["checks"]["redis"] == "ok"


def test_health_is_degraded_when_the_warehouse_is_misconfigured(settings: Settings) -> None:
    upgrade(settings.database_url)

    response = _client(replace(settings, warehouse_url="duckdb://relative.duckdb")).get("/health")

    assert response.status_code == 200 and response.get_json()["status"] == "degraded"
    assert response.get_json()["checks"]["warehouse"].startswith("TerminalError")


# --- openapi ----------------------------------------------------------------------------


def _flask_paths(app: Flask) -> set[str]:
    return {
        rule.rule.replace("<", "{").replace(">", "}")
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static" and not rule.rule.startswith("/ui/")  # the web console
    }


def test_openapi_lists_every_path(app: Flask, client: FlaskClient) -> None:
    response = client.get("/openapi.json")

    assert response.status_code == 200
    spec = response.get_json()
    assert spec["openapi"] == "3.0.3"
    assert set(spec["paths"]) == _flask_paths(app)
    assert {
        "/pipelines/run/{org}/{provider}/{domain}/{pipeline}",
        "/pipelines/status/{org}/{run_id}",
        "/pipelines/history/{org}",
        "/pipelines/logs/{org}/{run_id}",
        "/pipelines/logs/{org}/{run_id}/steps",
        "/pipelines/logs/{org}/{run_id}/transitions",
        "/pipelines/logs/{org}/{run_id}/download",
        "/pipelines/cancel/{org}/{run_id}",
        "/health",
        "/openapi.json",
        "/admin/orgs",
    } <= set(spec["paths"])


def test_openapi_operations_are_complete(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()

    for path, item in spec["paths"].items():
        declared = {p["name"] for p in item.get("parameters", []) if p["in"] == "path"}
        assert declared == {seg[1:-1] for seg in path.split("/") if seg.startswith("{")}, path
        for method, operation in item.items():
            if method == "parameters":
                continue
            assert operation["summary"] and operation["responses"], (path, method)

    run = spec["paths"]["/pipelines/run/{org}/{provider}/{domain}/{pipeline}"]["post"]
    assert set(run["responses"]) >= {"202", "401", "404", "409", "413", "415", "422", "429"}
    body_schema = run["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema == {"$ref": "#/components/schemas/RunRequest"}
    request_props = spec["components"]["schemas"]["RunRequest"]["properties"]
    assert set(request_props) == {"start_date", "end_date", "credential_id", "params"}
    problem = spec["components"]["responses"]["Problem"]["content"]
    assert "application/problem+json" in problem
    assert spec["components"]["securitySchemes"]["ApiKeyAuth"]["name"] == "X-API-Key"
    history = spec["paths"]["/pipelines/history/{org}"]["get"]
    assert {p["name"] for p in history["parameters"]} == {
        "limit",
        "cursor",
        "status",
        "pipeline_id",
    }


def test_openapi_is_built_without_a_request(app: Flask) -> None:
    assert build_spec(app)["info"]["title"] == "Pipeline Ops"


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []


def test_openapi_refs_all_resolve(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    refs = _refs(spec)
    assert refs
    for ref in refs:
        node = spec
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        assert node, ref
