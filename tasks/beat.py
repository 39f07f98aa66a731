"""Beat jobs that start work: schedule dispatch, every minute (celeryconfig.beat_schedule).

Beat may run twice during a deploy; that is safe because the dispatcher's
idempotency lives in the database (pipeline/schedules/dispatch.py), not here.
"""

from __future__ import annotations

from typing import Any

from pipeline.queue import DISPATCH_SCHEDULES
from tasks.celery_app import app
from tasks.runtime import services


@app.task(name=DISPATCH_SCHEDULES, ignore_result=True)
def dispatch_schedules() -> dict[str, Any]:
    return services().schedule_dispatcher.tick().as_dict()
