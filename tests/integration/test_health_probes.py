"""/health/live and /health/ready against a real PostgreSQL and redis-server that the test
stops: Redis down is 200 `degraded` (the quota falls back to its SQL ledger), the
database down is 503, and live is 200 throughout. Ready shows the heartbeats a worker
and beat wrote."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient

from app import create_app
from pipeline.bootstrap import build_services
from pipeline.observability.heartbeats import BEAT_KEY, worker_key, write_heartbeat
from pipeline.settings import Settings
from pipeline.storage.db import upgrade
from tests.support.doubles import NullDispatcher
from tests.support.servers import (
    ROOT,
    Server,
    app_env,
    create_pg_database,
    start_postgres,
    start_redis,
    stop_postgres_only,
)


@pytest.fixture
def servers() -> Iterator[tuple[Server, Server]]:
    # Servers of its own: the test stops them, and others share the session's.
    pg, rd = start_postgres(), start_redis()
    try:
        yield pg, rd
    finally:
        rd.stop()
        pg.stop()


def _client(tmp: Path, pg: Server, rd: Server) -> FlaskClient:
    url = create_pg_database(pg, "health")
    settings = Settings.from_env({**os.environ, **app_env(tmp, url, rd.url, ROOT / "configs")})
    upgrade(settings.database_url)
    return create_app(services=build_services(settings, NullDispatcher())).test_client()


def test_ready_degrades_without_redis_and_fails_without_the_database(
    tmp_path: Path, servers: tuple[Server, Server]
) -> None:
    pg, rd = servers
    client = _client(tmp_path, pg, rd)
    beats = redis.Redis.from_url(rd.url)
    write_heartbeat(beats, worker_key("celery@host-a"), now=time.time() - 4)
    write_heartbeat(beats, BEAT_KEY, now=time.time() - 2)
    beats.close()

    ready = client.get("/health/ready")
    assert ready.status_code == 200, ready.get_json()
    body = ready.get_json()
    assert body["status"] == "ok"
    assert body["checks"] == {"database": "ok", "redis": "ok", "warehouse": "ok"}
    assert 4 <= body["heartbeats"]["workers"]["celery@host-a"] < 30
    assert 2 <= body["heartbeats"]["beat"] < 30
    assert client.get("/health").get_json()["status"] == "ok"  # the older name
    assert client.get("/health/live").status_code == 200

    rd.stop()
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    body = ready.get_json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("ConnectionError")
    assert "degraded: quota is enforced by the SQL ledger alone" in body["checks"]["redis"]
    assert body["heartbeats"] == {"workers": {}, "beat": None}
    assert client.get("/health").status_code == 200
    live = client.get("/health/live")
    assert (live.status_code, live.get_json()) == (200, {"status": "ok"})

    stop_postgres_only(pg)
    ready = client.get("/health/ready")
    assert ready.status_code == 503
    body = ready.get_json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] != "ok" and len(body["checks"]["database"]) <= 200
    assert client.get("/health").status_code == 503
    live = client.get("/health/live")
    assert (live.status_code, live.get_json()) == (200, {"status": "ok"})


def test_the_warehouse_is_checked_at_most_once_a_minute(
    tmp_path: Path, servers: tuple[Server, Server]
) -> None:
    pg, rd = servers
    client = _client(tmp_path, pg, rd)
    services = client.application.extensions["pipeline_ops"]
    pings = []
    real = services.warehouse

    def counting() -> object:
        pings.append(1)
        return real()

    services.warehouse = counting  # type: ignore[method-assign]
    for _ in range(5):
        assert client.get("/health/ready").status_code == 200
    assert len(pings) == 1
