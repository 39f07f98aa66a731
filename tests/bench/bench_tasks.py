"""A no-op Celery task for the raw-chain baseline (loaded into the bench worker with -I)."""

from __future__ import annotations

from tasks.celery_app import app


@app.task(name="bench.noop", acks_late=True)
def noop() -> int:
    return 0
