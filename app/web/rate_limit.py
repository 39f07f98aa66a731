"""Per-org request rate limit on the org API (/pipelines): a one-minute window in Redis.

One INCR (+ EXPIRE) per request on a key per org and minute, shared by every gunicorn
worker and host. Over PIPELINE_OPS_ORG_RATE_LIMIT requests in the minute, the answer is
429 `rate_limited` with Retry-After (the seconds left in the window). Runs are bounded by
the quota whatever happens here, so if Redis is unreachable requests are let through
rather than refused.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from flask import current_app

from app.web.problems import ApiProblem

log = logging.getLogger("pipeline_ops.rate_limit")

WINDOW_SECONDS = 60
KEY = "pipeline_ops:rate:{org}:{window}"
# Tests put a client here (app.extensions) instead of the one made from REDIS_URL.
EXTENSION = "pipeline_ops_rate_limit_redis"

_clients: dict[str, redis.Redis] = {}
_lock = threading.Lock()


def _client(url: str) -> redis.Redis:
    given = current_app.extensions.get(EXTENSION)
    if given is not None:
        return given  # type: ignore[no-any-return]
    with _lock:
        if url not in _clients:
            _clients[url] = redis.Redis.from_url(
                url, socket_timeout=0.5, socket_connect_timeout=0.5
            )
        return _clients[url]


def check(org: str, limit: int, redis_url: str) -> None:
    """Count one request of `org`; ApiProblem 429 once the minute's limit is passed."""
    if limit <= 0:
        return
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    key = KEY.format(org=org, window=window)
    try:
        pipe = _client(redis_url).pipeline()
        pipe.incr(key)
        pipe.expire(key, WINDOW_SECONDS + 5)
        count = int(pipe.execute()[0])
    except redis.RedisError as exc:
        log.warning("rate limit not applied (redis unavailable: %s)", type(exc).__name__)
        return
    if count > limit:
        retry = max(1, int((window + 1) * WINDOW_SECONDS - now) + 1)
        raise ApiProblem(
            429,
            "rate_limited",
            f"more than {limit} requests in a minute for this organization; retry in {retry} s",
            headers={"Retry-After": str(retry)},
            limit=limit,
        )


# -- counting failures (console sign-ins) and events (quota refusals) -------------------------
# The same one-minute window as above for failures: only failed attempts are counted, and a
# name over its limit is refused before its key is even checked.


def _window_key(name: str) -> str:
    return KEY.format(org=name, window=int(time.time() // WINDOW_SECONDS))


def count(name: str, redis_url: str) -> None:
    """Count one failure of `name` in the current minute."""
    try:
        pipe = _client(redis_url).pipeline()
        pipe.incr(_window_key(name))
        pipe.expire(_window_key(name), WINDOW_SECONDS + 5)
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("failure not counted (redis unavailable: %s)", type(exc).__name__)


def exceeded(name: str, limit: int, redis_url: str) -> int:
    """Seconds until `name` may try again (0: now): its failures this minute reached limit."""
    if limit <= 0:
        return 0
    now = time.time()
    try:
        raw = _client(redis_url).get(_window_key(name))
    except redis.RedisError as exc:
        log.warning("rate limit not applied (redis unavailable: %s)", type(exc).__name__)
        return 0
    if raw is None or int(raw) < limit:
        return 0
    return max(1, int((now // WINDOW_SECONDS + 1) * WINDOW_SECONDS - now) + 1)


HOURLY_KEY = "pipeline_ops:events:{name}:{hour}"


def record_event(name: str, redis_url: str) -> None:
    """Count one event of `name` in the current hour, kept a day (the console's quota page
    shows the refusals of the last 24 h)."""
    key = HOURLY_KEY.format(name=name, hour=int(time.time() // 3600))
    try:
        pipe = _client(redis_url).pipeline()
        pipe.incr(key)
        pipe.expire(key, 25 * 3600)
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("event not counted (redis unavailable: %s)", type(exc).__name__)


def recent(name: str, redis_url: str, hours: int = 24) -> int | None:
    """Events of `name` in the last `hours` hours; None when Redis can't say."""
    now = int(time.time() // 3600)
    keys = [HOURLY_KEY.format(name=name, hour=h) for h in range(now - hours + 1, now + 1)]
    try:
        values = _client(redis_url).mget(keys)
    except redis.RedisError:
        return None
    return sum(int(v) for v in values if v is not None)
