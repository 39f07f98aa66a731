"""UTC quota periods and Retry-After values. Every function takes `now`: the clock is
injected everywhere, so tests move midnight and month ends by hand."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

# A concurrent slot frees whenever any run of the org ends, which we can't predict:
# tell the client to come back soon, or when the next lease runs out if that is sooner.
CONCURRENT_RETRY_AFTER = 10


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything quota stores is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def day_of(now: datetime) -> date:
    return as_utc(now).date()


def month_of(now: datetime) -> date:
    return day_of(now).replace(day=1)


def next_day(now: datetime) -> datetime:
    start = datetime.combine(day_of(now), datetime.min.time(), tzinfo=UTC)
    return start + timedelta(days=1)


def next_month(now: datetime) -> datetime:
    first = month_of(now)
    year, month = (first.year + 1, 1) if first.month == 12 else (first.year, first.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


def seconds_until(now: datetime, then: datetime) -> int:
    """Whole seconds from `now` to `then`, rounded up, at least 1."""
    return max(1, math.ceil((then - as_utc(now)).total_seconds()))


def retry_after(limit: str, now: datetime, earliest_expiry: datetime | None = None) -> int:
    if limit == "monthly":
        return seconds_until(now, next_month(now))
    if limit == "daily":
        return seconds_until(now, next_day(now))
    if earliest_expiry is not None:
        return min(CONCURRENT_RETRY_AFTER, seconds_until(now, as_utc(earliest_expiry)))
    return CONCURRENT_RETRY_AFTER
