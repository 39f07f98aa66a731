"""The real Celery app and Flask app, plus the test-only processors of
tests/support/engine_processors.py.

`celery -A tests.support.engine_app worker …` and `gunicorn "tests.support.engine_app:
create_app()"` run the production code; only the processor registry has extra entries.
"""

from __future__ import annotations

from typing import Any

from tasks.celery_app import app
from tests.support.engine_processors import register

register()


def create_app() -> Any:
    from app import create_app as create

    return create()


__all__ = ["app", "create_app"]
