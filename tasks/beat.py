"""Beat jobs: schedule dispatch, every minute, and retention, daily when configured
(celeryconfig.beat_schedule).

Beat may run twice during a deploy; that is safe because the dispatcher's
idempotency lives in the database (pipeline/schedules/dispatch.py), not here.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.queue import DISPATCH_SCHEDULES, PRUNE
from tasks.celery_app import app
from tasks.runtime import services

log = logging.getLogger("pipeline_ops.retention")


@app.task(name=DISPATCH_SCHEDULES, ignore_result=True)
def dispatch_schedules() -> dict[str, Any]:
    return services().schedule_dispatcher.tick().as_dict()


@app.task(name=PRUNE, ignore_result=True)
def prune_old_runs() -> dict[str, Any]:
    """Retention: ended runs older than PIPELINE_OPS_RETENTION_DAYS go (daily, when set)."""
    from pipeline.storage.prune import prune_runs

    svc = services()
    days = svc.settings.retention_days
    if not days:
        return {"skipped": "PIPELINE_OPS_RETENTION_DAYS is not set"}
    cutoff = datetime.now(UTC) - timedelta(days=days)
    report = prune_runs(svc.store.engine, cutoff)
    log.info("pruned runs ended before %s: %s", cutoff.isoformat(), report.rows)
    return report.as_dict()
