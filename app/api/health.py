"""Health probes: `/health/live` (the process answers), `/health/ready` (it can serve),
and `/health`, the older name of ready.

Ready is 503 only when the metadata database does not answer: nothing works without it.
Redis down is `degraded` with 200, since the quota falls back to its SQL ledger (and a
probe that fails on Redis would take every instance out of rotation at once); a failing
warehouse is `degraded` too, since reads and admission still work. The warehouse is
checked at most once a WAREHOUSE_CHECK_SECONDS per process: a BigQuery call on every
probe would cost money and quota. Ready also shows the workers' and beat's heartbeats
(pipeline/observability/heartbeats.py); they inform, they don't fail the probe: a web
instance is no less able to serve when a worker is down.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from app.api.schemas import HealthSchema, LiveSchema
from app.web.ext import services
from app.web.problems import clean
from pipeline.observability.heartbeats import Heartbeats, read_heartbeats

bp = Blueprint("health", __name__)

OK = "ok"
DEGRADED = "degraded"
UNAVAILABLE = "unavailable"
QUOTA_DEGRADED = "degraded: quota is enforced by the SQL ledger alone"
MAX_ERROR = 200
WAREHOUSE_CHECK_SECONDS = 60.0
REDIS_TIMEOUT = 1.0
_CACHE = "pipeline_ops.health_warehouse"


def _error(exc: Exception) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    message = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return clean(message)[:MAX_ERROR]


def _run(check: Callable[[], str]) -> tuple[str, bool]:
    try:
        return check(), True
    except Exception as exc:  # a health check reports failures, it never raises them
        return _error(exc), False


def check_database() -> str:
    with services().store.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return OK


def check_redis() -> tuple[tuple[str, bool], Heartbeats | None]:
    """Redis's answer, and the heartbeats read on the same connection."""
    settings = services().settings
    if settings.eager:
        return ("skipped (eager mode)", True), None
    client = redis.Redis.from_url(
        settings.redis_url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT
    )
    try:
        client.ping()
        return (OK, True), read_heartbeats(client)
    except Exception as exc:  # see _run
        return (_error(exc), False), None
    finally:
        client.close()


def check_warehouse() -> str:
    services().warehouse().ping()
    return OK


class _Every:
    """One result of a check per `seconds`, shared by the process's threads."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.lock = threading.Lock()
        self.result: tuple[str, bool] | None = None
        self.at = 0.0

    def get(self, check: Callable[[], str]) -> tuple[str, bool]:
        with self.lock:
            now = time.monotonic()
            if self.result is None or now - self.at >= self.seconds:
                self.result, self.at = _run(check), now
            return self.result


def _warehouse_cached() -> tuple[str, bool]:
    cache = current_app.extensions.setdefault(_CACHE, _Every(WAREHOUSE_CHECK_SECONDS))
    return cache.get(check_warehouse)  # type: ignore[no-any-return]


def readiness() -> tuple[dict[str, Any], int]:
    database = _run(check_database)
    redis_result, beats = check_redis()
    warehouse = _warehouse_cached()
    if not redis_result[1] and services().gate.mirrored:
        # The quota gate goes on without its Redis mirror: say so next to the error.
        redis_result = (f"{redis_result[0]} ({QUOTA_DEGRADED})", False)
    if not database[1]:
        status = UNAVAILABLE
    elif not (redis_result[1] and warehouse[1]):
        status = DEGRADED
    else:
        status = OK
    body = {
        "status": status,
        "checks": {"database": database[0], "redis": redis_result[0], "warehouse": warehouse[0]},
        "heartbeats": (beats or Heartbeats([], None)).as_dict(),
    }
    return HealthSchema().dump(body), 503 if status == UNAVAILABLE else 200


@bp.get("/health/live")
def live() -> ResponseReturnValue:
    """Liveness: the process answers HTTP.
    ---
    get:
      summary: Always 200 while the process serves requests; checks no dependency
      tags: [health]
      security: []
      responses:
        200:
          description: The process is up.
          content: {application/json: {schema: LiveSchema}}
    """
    return jsonify(LiveSchema().dump({"status": OK})), 200


@bp.get("/health/ready")
def ready() -> ResponseReturnValue:
    """Readiness: can this instance serve requests?
    ---
    get:
      summary: Database (503 if down), Redis and warehouse (degraded if down), heartbeats
      tags: [health]
      security: []
      responses:
        200:
          description: The database answers; `status` is `ok`, or `degraded` when Redis
            or the warehouse does not (each failing check holds a short error).
          content: {application/json: {schema: HealthSchema}}
        503:
          description: The metadata database does not answer.
          content: {application/json: {schema: HealthSchema}}
    """
    body, code = readiness()
    return jsonify(body), code


@bp.get("/health")
def health() -> ResponseReturnValue:
    """Readiness, under its older name (the same answer as /health/ready).
    ---
    get:
      summary: The same as /health/ready
      tags: [health]
      security: []
      responses:
        200:
          description: The database answers (`status` ok or degraded).
          content: {application/json: {schema: HealthSchema}}
        503:
          description: The metadata database does not answer.
          content: {application/json: {schema: HealthSchema}}
    """
    body, code = readiness()
    return jsonify(body), code
