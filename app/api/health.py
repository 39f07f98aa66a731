"""GET /health: can this process reach the database, Redis and the warehouse?"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from app.api.schemas import HealthSchema
from app.web.ext import services
from app.web.problems import clean

bp = Blueprint("health", __name__)

OK = "ok"
QUOTA_DEGRADED = "degraded: quota is enforced by the SQL ledger alone"
MAX_ERROR = 200


def _error(exc: Exception) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    message = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return clean(message)[:MAX_ERROR]


def check_database() -> str:
    with services().store.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return OK


def check_redis() -> str:
    settings = services().settings
    if settings.eager:
        return "skipped (eager mode)"
    import redis

    client = redis.Redis.from_url(settings.redis_url, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
    finally:
        client.close()
    return OK


def check_warehouse() -> str:
    services().warehouse().ping()
    return OK


CHECKS: dict[str, Callable[[], str]] = {
    "database": check_database,
    "redis": check_redis,
    "warehouse": check_warehouse,
}


def _run(check: Callable[[], str]) -> tuple[str, bool]:
    try:
        return check(), True
    except Exception as exc:  # a health check reports failures, it never raises them
        return _error(exc), False


@bp.get("/health")
def health() -> ResponseReturnValue:
    """Liveness of the API's dependencies.
    ---
    get:
      summary: Database, Redis and warehouse checks; 503 if any fails
      tags: [health]
      security: []
      responses:
        200:
          description: Every check passed.
          content: {application/json: {schema: HealthSchema}}
        503:
          description: At least one check failed; each failing check holds a short error.
          content: {application/json: {schema: HealthSchema}}
    """
    results = {name: _run(check) for name, check in CHECKS.items()}
    redis_message, redis_ok = results["redis"]
    if not redis_ok and services().gate.mirrored:
        # The quota gate goes on without its Redis mirror: say so next to the error.
        results["redis"] = (f"{redis_message} ({QUOTA_DEGRADED})", False)
    healthy = all(ok for _, ok in results.values())
    body = {
        "status": OK if healthy else "unavailable",
        "checks": {name: message for name, (message, _) in results.items()},
    }
    return jsonify(HealthSchema().dump(body)), 200 if healthy else 503
