"""GET /metrics: Prometheus text format, computed at scrape time.

Every value is read from a shared source when scraped — the metadata DB (runs by
status and pipeline, step durations, schedule ticks) and Redis (queue depth, quota
rejections) — so any gunicorn worker, on any host, answers with the same numbers
and no prometheus multiprocess directory is needed.

Quota rejections happen in the API process but are counted in Redis (HINCRBY), not
in a process-local Counter: with several gunicorn workers a local Counter would be
split across processes and reset on every worker restart.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Iterator
from typing import Any

import redis
from flask import Blueprint, Flask, Response, g, request
from flask.blueprints import BlueprintSetupState
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from app.web import rate_limit
from app.web.ext import services
from app.web.problems import PROBLEM_MIMETYPE, ApiProblem
from pipeline.bootstrap import Services
from pipeline.observability.lock_waits import lock_wait_histogram
from pipeline.observability.redact import redact
from pipeline.storage import queries as store_queries

log = logging.getLogger("pipeline_ops.metrics")

bp = Blueprint("metrics", __name__)

QUOTA_REJECTIONS_KEY = "pipeline_ops:metrics:quota_rejections"  # Redis hash: limit -> count
QUOTA_LIMITS = ("daily", "monthly", "concurrent")
CELERY_QUEUES = ("celery",)  # the default queue; every task of ours goes there
STEP_BUCKETS_SECONDS = (0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)
REDIS_TIMEOUT = 0.5


def _redis(svc: Services) -> redis.Redis:
    return redis.Redis.from_url(
        svc.settings.redis_url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT
    )


class PipelineOpsCollector:
    def __init__(self, svc: Services) -> None:
        self.svc = svc

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "pipeline_ops_metrics_source_up",
            "1 if the source answered this scrape (database, redis), else 0",
            labels=["source"],
        )
        for source, families in (("database", self._database), ("redis", self._redis)):
            try:
                collected = list(families())
            except Exception as exc:  # a down source leaves its metrics out, not the page
                log.warning("metrics: %s unavailable: %s", source, redact(type(exc).__name__))
                up.add_metric([source], 0)
                continue
            up.add_metric([source], 1)
            yield from collected
        yield up

    def _database(self) -> Iterator[Metric]:
        engine = self.svc.store.engine
        runs = GaugeMetricFamily(
            "pipeline_ops_runs",
            "Runs in the metadata database by status and pipeline",
            labels=["status", "pipeline_id"],
        )
        for status, pipeline_id, count in store_queries.run_counts(engine):
            runs.add_metric([status, pipeline_id], count)
        yield runs

        bounds_ms = [int(b * 1000) for b in STEP_BUCKETS_SECONDS]
        steps = HistogramMetricFamily(
            "pipeline_ops_step_duration_seconds",
            "Duration of finished step attempts by attempt status",
            labels=["status"],
        )
        for status, (cumulative, count, total_ms) in sorted(
            store_queries.step_duration_histogram(engine, bounds_ms).items()
        ):
            buckets = [(_le(b), c) for b, c in zip(STEP_BUCKETS_SECONDS, cumulative, strict=True)]
            steps.add_metric([status], [*buckets, ("+Inf", count)], total_ms / 1000)
        yield steps

        ticks = GaugeMetricFamily(
            "pipeline_ops_schedule_dispatches",
            "Schedule ticks by outcome (started, skipped e.g. on quota 429, failed, claimed)",
            labels=["status"],
        )
        for status, count in store_queries.dispatch_counts(engine):
            ticks.add_metric([status], count)
        yield ticks

    def _redis(self) -> Iterator[Metric]:
        client = _redis(self.svc)
        try:
            depth = GaugeMetricFamily(
                "pipeline_ops_queue_depth",
                "Messages waiting in the Celery queue (Redis LLEN)",
                labels=["queue"],
            )
            for queue in CELERY_QUEUES:
                depth.add_metric([queue], int(client.llen(queue)))
            rejected = CounterMetricFamily(
                "pipeline_ops_quota_rejections",
                "Runs refused by the quota (HTTP 429) by limit, across all API processes",
                labels=["limit"],
            )
            counts = {k.decode(): int(v) for k, v in client.hgetall(QUOTA_REJECTIONS_KEY).items()}
            for limit in sorted(set(QUOTA_LIMITS) | set(counts)):
                rejected.add_metric([limit], counts.get(limit, 0))
            waits = HistogramMetricFamily(
                "pipeline_ops_warehouse_lock_wait_seconds",
                "Waits for a DuckDB lock another program held on the warehouse file",
            )
            buckets, count, total = lock_wait_histogram(client)
            waits.add_metric([], [*((_le(b), c) for b, c in buckets), ("+Inf", count)], total)
        finally:
            client.close()
        yield depth
        yield rejected
        yield waits


def _le(bound: float) -> str:
    return str(float(bound))


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus metrics.
    ---
    get:
      summary: Runs by status and pipeline, step durations, quota rejections, queue depth
      tags: [meta]
      security: []
      responses:
        200:
          description: Prometheus text exposition format.
          content: {text/plain: {schema: {type: string}}}
        401: Problem
    """
    _check_token(services().settings.metrics_token)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PipelineOpsCollector(services()))  # type: ignore[arg-type]
    return Response(generate_latest(registry), status=200, content_type=CONTENT_TYPE_LATEST)


def _check_token(expected: str | None) -> None:
    """With PIPELINE_OPS_METRICS_TOKEN set, a scrape needs `Authorization: Bearer <token>`."""
    if not expected:
        return
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode("utf-8"), expected.encode("utf-8")
    ):
        raise ApiProblem(
            401,
            "unauthorized",
            "a valid Authorization: Bearer token is required for /metrics",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )


def count_quota_rejection(response: Response) -> Response:
    """after_request: a 429 quota problem counts one rejection for its `limit`."""
    if response.status_code != 429 or response.mimetype != PROBLEM_MIMETYPE:
        return response
    try:
        body: dict[str, Any] = json.loads(response.get_data())
        if body.get("code") == "quota_exceeded" and body.get("limit"):
            client = _redis(services())
            try:
                client.hincrby(QUOTA_REJECTIONS_KEY, str(body["limit"]), 1)
            finally:
                client.close()
            org = g.get("org_slug")
            if org:  # the console's quota page: this org's refusals of the last 24 h
                rate_limit.record_event(f"quota-{org}", services().settings.redis_url)
    except Exception as exc:  # a lost count must never turn a 429 into a 500
        log.warning("could not count a quota rejection: %s", redact(type(exc).__name__))
    return response


@bp.record_once
def _install_hook(state: BlueprintSetupState) -> None:
    app: Flask = state.app
    app.after_request(count_quota_rejection)
