"""The worker's and beat's heartbeats (pipeline/observability/heartbeats.py has the keys).

A worker beats from a daemon thread of its main process, started once the worker is
ready to consume: the prefork children are the ones busy with steps, so a long step never
delays a beat, and a main process that died stops them all. Beat beats from its own tick
(HeartbeatScheduler), so a beat loop that hangs is seen even though its process lives.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis
from celery.beat import PersistentScheduler
from celery.signals import worker_ready, worker_shutdown

from pipeline.observability.heartbeats import (
    BEAT_KEY,
    HEARTBEAT_EVERY,
    worker_key,
    write_heartbeat,
)
from pipeline.settings import Settings

log = logging.getLogger("pipeline_ops.heartbeats")
REDIS_TIMEOUT = 2.0

_stop = threading.Event()
_thread: threading.Thread | None = None
_key: str | None = None


def _client() -> redis.Redis:
    return redis.Redis.from_url(
        Settings.from_env().redis_url,
        socket_timeout=REDIS_TIMEOUT,
        socket_connect_timeout=REDIS_TIMEOUT,
    )


def _beat_forever(key: str, every: float) -> None:
    client = _client()
    try:
        while True:
            write_heartbeat(client, key)
            if _stop.wait(every):
                return
    finally:
        client.close()


@worker_ready.connect
def _start_worker_heartbeat(sender: Any = None, **_: object) -> None:
    global _thread, _key
    hostname = getattr(sender, "hostname", None) or "worker"
    _key = worker_key(str(hostname))
    _stop.clear()
    _thread = threading.Thread(
        target=_beat_forever, args=(_key, HEARTBEAT_EVERY), name="heartbeat", daemon=True
    )
    _thread.start()


@worker_shutdown.connect
def _stop_worker_heartbeat(**_: object) -> None:
    """A worker that stops cleanly takes its key with it: gone, not merely late."""
    _stop.set()
    if _thread is not None:
        _thread.join(timeout=REDIS_TIMEOUT * 2)
    if _key is not None:
        client = _client()
        try:
            client.delete(_key)
        except redis.RedisError:
            pass
        finally:
            client.close()


class HeartbeatScheduler(PersistentScheduler):
    """Celery's default scheduler, beating at most every HEARTBEAT_EVERY seconds."""

    _client: redis.Redis | None = None
    _last_beat: float = 0.0

    def tick(self, *args: Any, **kwargs: Any) -> float:
        interval: float = super().tick(*args, **kwargs)
        now = time.monotonic()
        if now - self._last_beat >= HEARTBEAT_EVERY:
            if self._client is None:
                self._client = _client()
            if write_heartbeat(self._client, BEAT_KEY):
                self._last_beat = now
        # Wake up at least every HEARTBEAT_EVERY seconds, between due tasks too.
        return min(interval, HEARTBEAT_EVERY)
