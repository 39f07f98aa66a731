"""Waits for a warehouse lock another program holds: told in the run log, counted for /metrics.

A user's read-only DuckDB shell on the warehouse file stalls every write until it closes;
without this the step just looks slow. The counts live in Redis (a hash, like the quota
rejections), so every worker adds to the same numbers and any API process can serve them.
"""

from __future__ import annotations

import logging

import redis

from pipeline.observability.redact import redact
from processors.base import RunLog
from warehouse.base import LockWait, LockWaitObserver

logger = logging.getLogger("pipeline_ops.warehouse")

LOCK_WAITS_KEY = "pipeline_ops:metrics:warehouse_lock_waits"  # count, sum, le_<bound>
LOCK_WAIT_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0)
REDIS_TIMEOUT = 0.5


def lock_wait_reporter(log: RunLog, redis_url: str) -> LockWaitObserver:
    """The observer a step's warehouse gets: a run-log line when a wait starts and ends,
    and the wait's length counted once it ended."""

    def report(wait: LockWait) -> None:
        since = wait.since.strftime("%H:%M:%S")
        if wait.waited_seconds is None:
            log.warning(
                f"waiting for the DuckDB write lock held by {wait.holder} since {since} UTC "
                f"({wait.what}); a read-only connection to the warehouse file blocks writes"
            )
            return
        outcome = "got it" if wait.acquired else "gave up"
        log.warning(
            f"{outcome} after waiting {wait.waited_seconds:.1f}s for the DuckDB write lock "
            f"held by {wait.holder} ({wait.what})"
        )
        count_lock_wait(redis_url, wait.waited_seconds)

    return report


def count_lock_wait(redis_url: str, seconds: float) -> None:
    try:
        client = redis.Redis.from_url(
            redis_url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT
        )
        try:
            pipe = client.pipeline()
            pipe.hincrby(LOCK_WAITS_KEY, "count", 1)
            pipe.hincrbyfloat(LOCK_WAITS_KEY, "sum", seconds)
            for bound in LOCK_WAIT_BUCKETS:
                if seconds <= bound:  # cumulative, as Prometheus buckets are
                    pipe.hincrby(LOCK_WAITS_KEY, f"le_{bound}", 1)
            pipe.execute()
        finally:
            client.close()
    except Exception as exc:  # a lost count must never fail the step
        logger.warning("could not count a warehouse lock wait: %s", redact(type(exc).__name__))


def lock_wait_histogram(client: redis.Redis) -> tuple[list[tuple[float, int]], int, float]:
    """([(bound, cumulative count)], count, sum in seconds) as counted so far."""
    raw = {k.decode(): v.decode() for k, v in client.hgetall(LOCK_WAITS_KEY).items()}
    buckets = [(bound, int(raw.get(f"le_{bound}", 0))) for bound in LOCK_WAIT_BUCKETS]
    return buckets, int(raw.get("count", 0)), float(raw.get("sum", 0.0))
