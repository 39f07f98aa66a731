"""Retry arithmetic and error text shared by the tasks that retry (steps, notifications)."""

from __future__ import annotations

import random

from celeryconfig import MAX_RETRY_COUNTDOWN
from pipeline.observability.redact import cap_text, redact


def backoff_countdown(backoff_seconds: float, attempt: int, retry_after: float | None) -> float:
    """Exponential backoff from `backoff_seconds`, with up to 10% jitter, honouring Retry-After."""
    base = min(float(MAX_RETRY_COUNTDOWN), backoff_seconds * 2 ** (attempt - 1))
    countdown = base * (1 + random.uniform(0, 0.1))
    if retry_after is not None:
        countdown = max(countdown, min(float(MAX_RETRY_COUNTDOWN), retry_after))
    return countdown


def describe(exc: BaseException, limit: int = 4096) -> str:
    """The exception's text as it may be logged, stored or put in a Celery result:
    redacted and capped (a provider's 5 MiB answer must not travel on)."""
    text = str(exc) or type(exc).__name__
    return cap_text(redact(text) or text, limit) or text
