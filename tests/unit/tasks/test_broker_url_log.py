"""The worker's log shows the broker URL as configured: a password only masked, and no
mask (no `[REDACTED]`) where the URL has no password. Kombu writes `redis://:**@host`
either way; the worker's log filter puts the real shape back before redaction."""

from __future__ import annotations

import logging

import pytest

from pipeline.observability.logs import JsonFormatter
from tasks.celery_app import BrokerUrlFilter


def logged(url: str, message: str) -> str:
    from kombu import Connection

    record = logging.LogRecord(
        "celery.worker.consumer.connection", logging.INFO, __file__, 1, message,
        (Connection(url).as_uri(),), None,
    )  # fmt: skip
    assert BrokerUrlFilter([url]).filter(record)
    return JsonFormatter().format(record)


def test_a_url_without_a_password_is_shown_without_any_mask() -> None:
    line = logged("redis://127.0.0.1:6379/0", "Connected to %s")
    assert '"message": "Connected to redis://127.0.0.1:6379/0"' in line
    assert "REDACTED" not in line and "**" not in line


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret-pass@10.1.2.3:6380/1", "redis://:[REDACTED]@10.1.2.3:6380/1"),
        ("redis://ops:s3cret-pass@redis.internal:6379/0", "redis://ops:[REDACTED]@redis.internal"),
    ],
)
def test_a_password_is_masked_and_never_shown(url: str, shown: str) -> None:
    line = logged(url, "Connected to %s")
    assert shown in line
    assert "s3cret-pass" not in line
