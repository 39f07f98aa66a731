"""Process heartbeats in Redis: each worker and beat says "alive at T" every few seconds.

The keys are defined here and nowhere else; `/health/ready`, `/metrics` and `doctor`
read them with `read_heartbeats()`.

- `pipeline_ops:heartbeat:worker:<hostname>`: one per worker (its Celery node name),
  written by a thread of the worker's main process (tasks/heartbeat.py).
- `pipeline_ops:heartbeat:beat`: written from beat's own scheduler tick, so a beat whose
  loop is stuck stops beating even though its process is up.

Each value is the Unix time of the beat; the key's TTL (HEARTBEAT_TTL) makes a process
that died silently disappear after a while, while its age, until then, says how long ago
it stopped.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import redis

from pipeline.observability.redact import redact

log = logging.getLogger("pipeline_ops.heartbeats")

PREFIX = "pipeline_ops:heartbeat:"
WORKER_PREFIX = PREFIX + "worker:"
BEAT_KEY = PREFIX + "beat"
# Seconds between two beats of a worker, and at least between two of beat (its tick).
HEARTBEAT_EVERY = 15
# A key outlives a few missed beats, so its age can pass any alert threshold before it
# vanishes (the starter alert fires on beat at 3 minutes).
HEARTBEAT_TTL = 3600
MAX_WORKERS_READ = 1000


def worker_key(node: str) -> str:
    return WORKER_PREFIX + node


@dataclass(frozen=True)
class Heartbeat:
    kind: str  # worker | beat
    name: str  # the worker's node name; "beat"
    at: float  # Unix time of the last beat
    age_seconds: float


@dataclass(frozen=True)
class Heartbeats:
    workers: list[Heartbeat]
    beat: Heartbeat | None

    def as_dict(self) -> dict[str, object]:
        """The shape /health/ready shows: ages in whole seconds, None when never seen."""
        return {
            "workers": {w.name: round(w.age_seconds, 1) for w in self.workers},
            "beat": None if self.beat is None else round(self.beat.age_seconds, 1),
        }


def write_heartbeat(client: redis.Redis, key: str, now: float | None = None) -> bool:
    """Record a beat; a Redis error is logged, never raised (a beat must not stop work)."""
    try:
        client.set(key, f"{time.time() if now is None else now:.3f}", ex=HEARTBEAT_TTL)
    except redis.RedisError as exc:
        log.warning("heartbeat %s not written: %s", key, redact(type(exc).__name__))
        return False
    return True


def read_heartbeats(client: redis.Redis, now: float | None = None) -> Heartbeats:
    """Every worker's and beat's last heartbeat; raises redis errors to the caller."""
    now = time.time() if now is None else now
    keys = [BEAT_KEY]
    for key in client.scan_iter(match=WORKER_PREFIX + "*", count=200):
        keys.append(key.decode() if isinstance(key, bytes) else str(key))
        if len(keys) > MAX_WORKERS_READ:
            break
    values = client.mget(keys)
    workers: list[Heartbeat] = []
    beat: Heartbeat | None = None
    for key, raw in zip(keys, values, strict=True):
        if raw is None:
            continue
        try:
            at = float(raw)
        except ValueError:
            continue
        age = max(0.0, now - at)
        if key == BEAT_KEY:
            beat = Heartbeat("beat", "beat", at, age)
        else:
            workers.append(Heartbeat("worker", key[len(WORKER_PREFIX) :], at, age))
    return Heartbeats(sorted(workers, key=lambda w: w.name), beat)
