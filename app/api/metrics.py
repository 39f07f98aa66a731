"""GET /metrics: Prometheus text format, read from shared sources at scrape time.

Every value comes from the metadata DB or Redis, so any gunicorn worker, on any host,
answers with the same numbers and no prometheus multiprocess directory is needed.

What a scrape reads is bounded whatever the history: counters and histograms come from
the running totals the run, step and dispatch statements keep (pipeline/storage/
counters.py, a few rows per org x pipeline x status), the active-run gauge from the
active runs alone (an index on status), the rest from a few Redis keys. The page is also
cached for `PIPELINE_OPS_METRICS_CACHE_SECONDS` per process, so several Prometheus
servers (or a dashboard refresh storm) cost one read.

Counts made in the API process (quota rejections, HTTP requests) live in Redis: with
several gunicorn workers a process-local Counter would be split across processes and
reset on every restart. HTTP requests are tallied in the process (a dict increment per
request) and added to Redis every few seconds by a background thread, so a request never
waits on Redis for its metrics.
"""

from __future__ import annotations

import bisect
import hmac
import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import redis
from flask import Blueprint, Flask, Response, current_app, g, request
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
from pipeline.observability.heartbeats import read_heartbeats
from pipeline.observability.lock_waits import lock_wait_histogram
from pipeline.observability.redact import redact
from pipeline.queue import CONTROL_QUEUE, STEP_QUEUE
from pipeline.storage import counters
from pipeline.storage import queries as store_queries
from pipeline.storage.statements import as_utc

log = logging.getLogger("pipeline_ops.metrics")

bp = Blueprint("metrics", __name__)

QUOTA_REJECTIONS_KEY = "pipeline_ops:metrics:quota_rejections"  # Redis hash: limit -> count
HTTP_KEY = "pipeline_ops:metrics:http"  # Redis hash: see HttpTally
QUOTA_LIMITS = ("daily", "monthly", "concurrent")
CELERY_QUEUES = (STEP_QUEUE, CONTROL_QUEUE)
HTTP_BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
HTTP_FLUSH_SECONDS = 5.0
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REDIS_TIMEOUT = 0.5
_SEP = "\t"


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
        rows = counters.read_all(engine)

        runs = CounterMetricFamily(
            "pipeline_ops_runs",
            "Runs that ended, by final status and pipeline",
            labels=["status", "pipeline_id"],
        )
        ended: dict[tuple[str, str], int] = {}
        last_success = GaugeMetricFamily(
            "pipeline_ops_last_success_timestamp_seconds",
            "When the last run of the pipeline for the org completed (Unix time)",
            labels=["org", "pipeline"],
        )
        for row in rows:
            if row.name != counters.RUNS:
                continue
            key = (row.status, row.pipeline_id)
            ended[key] = ended.get(key, 0) + row.value
            if row.status == "completed" and row.last_at is not None:
                last_success.add_metric([row.org_slug, row.pipeline_id], _unix(row.last_at))
        for (status, pipeline_id), value in sorted(ended.items()):
            runs.add_metric([status, pipeline_id], value)
        yield runs
        yield last_success

        active = GaugeMetricFamily(
            "pipeline_ops_runs_active",
            "Runs not yet ended, by status and pipeline",
            labels=["status", "pipeline_id"],
        )
        for status, pipeline_id, count in store_queries.active_run_counts(engine):
            active.add_metric([status, pipeline_id], count)
        yield active

        yield _histogram(
            "pipeline_ops_step_duration_seconds",
            "Duration of finished step attempts by attempt status",
            [r for r in rows if r.name == counters.STEP_DURATION],
            counters.STEP_BUCKETS_SECONDS,
        )

        ticks = CounterMetricFamily(
            "pipeline_ops_schedule_dispatches",
            "Schedule ticks by outcome (started, skipped e.g. on quota 429, failed)",
            labels=["status"],
        )
        by_status: dict[str, int] = {}
        for row in rows:
            if row.name == counters.DISPATCHES:
                by_status[row.status] = by_status.get(row.status, 0) + row.value
        for status, value in sorted(by_status.items()):
            ticks.add_metric([status], value)
        yield ticks

    def _redis(self) -> Iterator[Metric]:
        client = _redis(self.svc)
        try:
            depth = GaugeMetricFamily(
                "pipeline_ops_queue_depth",
                "Messages waiting in a Celery queue (Redis LLEN)",
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
            beats = read_heartbeats(client)
            http = _http_families(client)
        finally:
            client.close()
        yield depth
        yield rejected
        yield waits
        worker_age = GaugeMetricFamily(
            "pipeline_ops_worker_heartbeat_age_seconds",
            "Seconds since each Celery worker's last heartbeat (absent: none for an hour)",
            labels=["worker"],
        )
        for beat in beats.workers:
            worker_age.add_metric([beat.name], beat.age_seconds)
        yield worker_age
        beat_age = GaugeMetricFamily(
            "pipeline_ops_beat_heartbeat_age_seconds",
            "Seconds since Celery beat's last scheduler tick (absent: none for an hour)",
        )
        if beats.beat is not None:
            beat_age.add_metric([], beats.beat.age_seconds)
        yield beat_age
        yield from http


def _unix(value: datetime) -> float:
    # SQLite hands back naive datetimes; every stored time is UTC.
    return float(as_utc(value).timestamp())  # type: ignore[union-attr]


def _histogram(
    name: str, documentation: str, rows: list[counters.CounterRow], bounds: tuple[float, ...]
) -> HistogramMetricFamily:
    """A histogram from per-bucket (non-cumulative) counter rows, labelled by status."""
    family = HistogramMetricFamily(name, documentation, labels=["status"])
    per_status: dict[str, dict[str, counters.CounterRow]] = {}
    for row in rows:
        per_status.setdefault(row.status, {})[row.le] = row
    for status, by_le in sorted(per_status.items()):
        running, buckets = 0, []
        for bound in bounds:
            running += by_le[_le(bound)].value if _le(bound) in by_le else 0
            buckets.append((_le(bound), running))
        count = sum(r.value for r in by_le.values())
        family.add_metric(
            [status], [*buckets, ("+Inf", count)], sum(r.total for r in by_le.values())
        )
    return family


class HttpTally:
    """HTTP request counts and latencies of this process, added to Redis now and then.

    Redis hash fields: `count<TAB>route<TAB>method<TAB>status`, `sum<TAB>...` (seconds)
    and `bucket<TAB>le<TAB>...` (requests in that bucket alone; cumulated at scrape).
    `route` is the URL rule (`/pipelines/status/<org>/<run_id>`), never the raw path,
    so org slugs and run ids don't multiply the series.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: dict[str, float] = {}
        self.thread: threading.Thread | None = None

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        labels = _SEP.join((route, method, str(status)))
        index = bisect.bisect_left(HTTP_BUCKETS_SECONDS, seconds)
        le = _le(HTTP_BUCKETS_SECONDS[index]) if index < len(HTTP_BUCKETS_SECONDS) else "+Inf"
        with self.lock:
            pending = self.pending
            for field, amount in (
                ("count" + _SEP + labels, 1.0),
                ("sum" + _SEP + labels, seconds),
                ("bucket" + _SEP + le + _SEP + labels, 1.0),
            ):
                pending[field] = pending.get(field, 0.0) + amount

    def flush(self, svc: Services) -> None:
        with self.lock:
            pending, self.pending = self.pending, {}
        if not pending:
            return
        try:
            client = _redis(svc)
            try:
                pipe = client.pipeline(transaction=False)
                for field, amount in pending.items():
                    if field.startswith("sum" + _SEP):
                        pipe.hincrbyfloat(HTTP_KEY, field, amount)
                    else:
                        pipe.hincrby(HTTP_KEY, field, int(amount))
                pipe.execute()
            finally:
                client.close()
        except Exception as exc:  # a flush must never fail a request or a scrape
            log.warning("http metrics not flushed: %s", redact(type(exc).__name__))
            # Kept for the next flush: one entry per route x method x status x bucket at
            # most, so a long Redis outage can't grow it without bound.
            with self.lock:
                for field, amount in pending.items():
                    self.pending[field] = self.pending.get(field, 0.0) + amount

    def start(self, app: Flask, svc: Services) -> None:
        """The flushing thread, started by the first request of this (post-fork) process."""
        with self.lock:
            if self.thread is not None and self.thread.is_alive():
                return
            self.thread = threading.Thread(
                target=self._loop, args=(svc,), name="http-metrics", daemon=True
            )
            self.thread.start()

    def _loop(self, svc: Services) -> None:
        while True:
            time.sleep(HTTP_FLUSH_SECONDS)
            self.flush(svc)


_TALLY = "pipeline_ops.http_tally"


def _tally(app: Flask) -> HttpTally:
    return app.extensions.setdefault(_TALLY, HttpTally())  # type: ignore[no-any-return]


def _http_families(client: redis.Redis) -> list[Metric]:
    raw = client.hgetall(HTTP_KEY)
    total = CounterMetricFamily(
        "pipeline_ops_http_requests",
        "HTTP requests by route (the URL rule), method and status, across all API processes",
        labels=["route", "method", "status"],
    )
    latency = HistogramMetricFamily(
        "pipeline_ops_http_request_duration_seconds",
        "HTTP request latency by route, method and status",
        labels=["route", "method", "status"],
    )
    counts: dict[tuple[str, ...], float] = {}
    sums: dict[tuple[str, ...], float] = {}
    buckets: dict[tuple[str, ...], dict[str, float]] = {}
    for key, value in raw.items():
        parts = (key.decode() if isinstance(key, bytes) else str(key)).split(_SEP)
        if parts[0] == "count" and len(parts) == 4:
            counts[tuple(parts[1:])] = float(value)
        elif parts[0] == "sum" and len(parts) == 4:
            sums[tuple(parts[1:])] = float(value)
        elif parts[0] == "bucket" and len(parts) == 5:
            buckets.setdefault(tuple(parts[2:]), {})[parts[1]] = float(value)
    for labels, count in sorted(counts.items()):
        total.add_metric(list(labels), count)
        running, cumulative = 0.0, []
        for bound in HTTP_BUCKETS_SECONDS:
            running += buckets.get(labels, {}).get(_le(bound), 0.0)
            cumulative.append((_le(bound), running))
        latency.add_metric(list(labels), [*cumulative, ("+Inf", count)], sums.get(labels, 0.0))
    return [total, latency]


def _le(bound: float) -> str:
    return str(float(bound))


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus metrics.
    ---
    get:
      summary: Runs, freshness, steps, HTTP requests, queues, quota rejections, heartbeats
      tags: [meta]
      security: []
      responses:
        200:
          description: Prometheus text exposition format.
          content: {text/plain: {schema: {type: string}}}
        401: Problem
    """
    svc = services()
    _check_token(svc.settings.metrics_token)
    return Response(_page(current_app, svc), status=200, content_type=CONTENT_TYPE_LATEST)


_PAGE = "pipeline_ops.metrics_page"


def _page(app: Flask, svc: Services) -> bytes:
    """The exposition text, rebuilt at most every metrics_cache_seconds per process."""
    cache: dict[str, Any] = app.extensions.setdefault(_PAGE, {"lock": threading.Lock()})
    with cache["lock"]:
        now = time.monotonic()
        if "page" in cache and now - cache["at"] < svc.settings.metrics_cache_seconds:
            return cache["page"]  # type: ignore[no-any-return]
        if not svc.settings.eager:
            _tally(app).flush(svc)  # this process's own requests, up to now
        registry = CollectorRegistry(auto_describe=False)
        registry.register(PipelineOpsCollector(svc))  # type: ignore[arg-type]
        page = generate_latest(registry)
        cache.update(page=page, at=now)
        return page


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


def _start_timer() -> None:
    g.pipeline_ops_started = time.perf_counter()


def _observe(response: Response) -> Response:
    """after_request: one request into this process's tally (no I/O here)."""
    started = g.get("pipeline_ops_started")
    svc = services()
    if started is None or svc.settings.eager:
        return response
    rule = request.url_rule
    route = rule.rule if rule is not None else "(unmatched)"
    # Any token is a method to HTTP: a client inventing them must not invent series.
    method = request.method if request.method in HTTP_METHODS else "other"
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    tally = _tally(app)
    tally.observe(route, method, response.status_code, time.perf_counter() - started)
    if tally.thread is None:
        tally.start(app, svc)
    return response


@bp.record_once
def _install_hook(state: BlueprintSetupState) -> None:
    app: Flask = state.app
    app.after_request(count_quota_rejection)
    # First of all before_request functions: one that refuses the request (the API key
    # check, the rate limit) must not leave it untimed and uncounted.
    app.before_request_funcs.setdefault(None, []).insert(0, _start_timer)
    app.after_request(_observe)
