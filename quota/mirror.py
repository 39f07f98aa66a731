"""The Redis mirror of the quota ledger: Lua scripts over a few keys per org.

Per org (the `{org}` hash tag keeps them in one cluster slot):
- `leases`: sorted set run_id -> lease expiry (epoch ms); expired ones are
  dropped before every check,
- `day:YYYY-MM-DD`, `month:YYYY-MM`: counters named after their period, with an
  EXPIRE past its end, so they vanish on their own,
- `meta`: a hash. Its `ready` field is set when the mirror was built from the ledger;
  missing after a FLUSHALL or a restart, which makes `reserve` ask for a rebuild
  instead of counting from zero.

Plans are not the mirror's business: the caller passes the limits, and the SQL ledger
(which holds the plan epoch) is what makes sure they are the ones in force.

Every time argument comes from the caller's clock, never Redis's TIME, so tests can
move time. Any Redis error trips a short circuit breaker: callers then see
`MirrorUnavailable` and let the SQL ledger decide alone.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import redis

from quota import periods
from quota.plans import Plan
from quota.usage import Usage

log = logging.getLogger("pipeline_ops.quota")

LUA_DIR = Path(__file__).resolve().parent / "lua"
SCRIPTS = ("reserve", "release", "heartbeat", "rebuild")
# Counters outlive their period by this much, then Redis drops them.
TTL_MARGIN = 3600
NEVER = 2**62  # a score no lease reaches


class MirrorUnavailable(Exception):
    """Redis can't be used right now; the ledger alone decides."""


@dataclass(frozen=True)
class Verdict:
    kind: str  # ok | exceeded | rebuild
    limit: str = ""
    limit_value: int = 0
    current: int = 0


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def score(moment: datetime) -> int:
    """A lease expiry as a sorted-set score: epoch milliseconds (ints pack faster)."""
    return int(periods.as_utc(moment).timestamp() * 1000)


# Key names and period ends only change at midnight: computing them per call was a
# measurable share of a reservation's client-side cost.
@functools.lru_cache(maxsize=4096)
def _period_keys(base: str, day: date) -> tuple[str, ...]:
    return (
        f"{base}leases",
        f"{base}day:{day.isoformat()}",
        f"{base}month:{day:%Y-%m}",
        f"{base}meta",
    )


@functools.lru_cache(maxsize=64)
def _period_ends(day: date) -> tuple[float, float]:
    """Epoch seconds of the next UTC midnight and of the next UTC month start."""
    start = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    return periods.next_day(start).timestamp(), periods.next_month(start).timestamp()


class RedisMirror:
    def __init__(
        self,
        client: redis.Redis,
        prefix: str = "pipeline_ops:quota:",
        retry_seconds: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.retry_seconds = retry_seconds
        self.monotonic = monotonic
        self.scripts = {
            name: client.register_script((LUA_DIR / f"{name}.lua").read_text()) for name in SCRIPTS
        }
        self._down_until = 0.0
        self._down = False
        # Bumped each time Redis goes from usable to not: the gate resyncs an org's
        # mirror on first use after an outage, as releases may have been missed.
        self.outages = 0
        self.last_error = ""

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisMirror:
        # A blocking pool: a burst of threads waits for a connection instead of failing
        # with "too many connections" (which would wrongly trip the breaker).
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=50,
            timeout=5,
            socket_timeout=2,
            socket_connect_timeout=1,
            decode_responses=True,
        )
        return cls(redis.Redis(connection_pool=pool), **kwargs)

    # -- circuit breaker -------------------------------------------------------------------

    def available(self) -> bool:
        return self.monotonic() >= self._down_until

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self.available():
            raise MirrorUnavailable(self.last_error or "redis unavailable")
        try:
            result = fn(*args, **kwargs)
        except redis.RedisError as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            if not self._down:
                self.outages += 1
                log.warning("redis quota mirror unavailable, ledger only: %s", self.last_error)
            self._down = True
            self._down_until = self.monotonic() + self.retry_seconds
            raise MirrorUnavailable(self.last_error) from exc
        self._down = False
        return result

    # -- keys ------------------------------------------------------------------------------

    def _base(self, org: str) -> str:
        return f"{self.prefix}{{{org}}}:"

    def keys(self, org: str, now: datetime) -> list[str]:
        return list(_period_keys(self._base(org), periods.day_of(now)))

    @staticmethod
    def _ttls(now: datetime) -> tuple[int, int]:
        next_day, next_month = _period_ends(periods.day_of(now))
        at = periods.as_utc(now).timestamp()
        return (
            max(1, math.ceil(next_day - at)) + TTL_MARGIN,
            max(1, math.ceil(next_month - at)) + TTL_MARGIN,
        )

    # -- scripts ---------------------------------------------------------------------------

    def reserve(self, plan: Plan, run_id: str, now: datetime, lease_until: datetime) -> Verdict:
        day_ttl, month_ttl = self._ttls(now)
        args = [
            run_id,
            score(now),
            score(lease_until),
            plan.concurrent_limit,
            plan.daily_limit,
            plan.monthly_limit,
            day_ttl,
            month_ttl,
        ]
        reply = self._call(self.scripts["reserve"], keys=self.keys(plan.org_slug, now), args=args)
        kind = _text(reply[0])
        if kind == "exceeded":
            return Verdict(kind, _text(reply[1]), int(reply[2]), int(reply[3]))
        return Verdict(kind)

    def release(self, org: str, run_id: str, now: datetime, undo_counts: bool = False) -> bool:
        """Drop the lease; `undo_counts` also takes back the day and month counts (the
        ledger refused, so the reservation never happened). Pass the reserve's `now`."""
        # The counters' keys only matter when they are undone.
        keys = self.keys(org, now)[: 3 if undo_counts else 1]
        args = [run_id, "1" if undo_counts else "0"]
        return bool(self._call(self.scripts["release"], keys=keys, args=args))

    def heartbeat(self, org: str, run_id: str, now: datetime, until: datetime) -> bool:
        keys = self.keys(org, now)[:1]
        args = [run_id, score(until), score(now)]
        return bool(self._call(self.scripts["heartbeat"], keys=keys, args=args))

    def rebuild(
        self,
        usage: Usage,
        now: datetime,
        force: bool,
        young_after: datetime | None = None,
        ended: Sequence[str] = (),
    ) -> bool:
        """Make the org's mirror say what the ledger says (`force`: even if it exists).

        Mirror leases with an expiry after `young_after` that the ledger doesn't hold
        are reservations still on their way to it: they are kept and counted, unless
        `ended` names them (the ledger released them; the mirror missed it).
        """
        day_ttl, month_ttl = self._ttls(now)
        young = score(young_after) if young_after is not None else NEVER
        args: list[Any] = ["1" if force else "0", usage.daily_runs, usage.monthly_runs]
        args += [day_ttl, month_ttl, young, len(ended), *ended]
        for lease in usage.leases:
            args += [score(lease.expires_at), lease.run_id]
        keys = self.keys(usage.org_slug, now)
        return bool(self._call(self.scripts["rebuild"], keys=keys, args=args))

    # -- inspection ------------------------------------------------------------------------

    def state(self, org: str, now: datetime) -> dict[str, Any]:
        """What the mirror holds for the org (for `pipeline-ops quota show`)."""
        leases, day, month, meta = self.keys(org, now)
        pipe = self.client.pipeline(transaction=False)
        pipe.hexists(meta, "ready")
        pipe.zrangebyscore(leases, f"({score(now)}", "+inf")
        pipe.get(day)
        pipe.get(month)
        exists, live, daily, monthly = self._call(pipe.execute)
        return {
            "ready": bool(exists),
            "leases": [_text(r) for r in live],
            "daily_runs": int(daily or 0),
            "monthly_runs": int(monthly or 0),
        }

    def ping(self) -> bool:
        return bool(self._call(self.client.ping))
