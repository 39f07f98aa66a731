"""Beat jobs that start work: schedule dispatch, every minute (celeryconfig.beat_schedule).

Beat may run twice during a deploy; that is safe because the dispatcher's
idempotency lives in the database (pipeline/schedule_dispatch.py), not here.
"""

from __future__ import annotations

from typing import Any

from pipeline.schedule_dispatch import ScheduleDispatcher
from tasks.celery_app import app
from tasks.runtime import services


@app.task(name="pipeline_ops.dispatch_schedules", ignore_result=True)
def dispatch_schedules() -> dict[str, Any]:
    return ScheduleDispatcher.for_runs(services().runs).tick().as_dict()
