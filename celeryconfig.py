"""Celery settings, from the same environment variables as every other process.

The settings here are the ones whose defaults lose or duplicate work (DESIGN §6,
"Celery settings that matter").
"""

from __future__ import annotations

from celery.schedules import crontab

from pipeline.queue import CONTROL_QUEUE, CONTROL_TASKS, DISPATCH_SCHEDULES, PRUNE, REAP
from pipeline.settings import Settings

_settings = Settings.from_env()

# The task modules: workers load them at start, an eager process (--local) before its
# first task (pipeline/queue.py).
include = ["tasks.steps", "tasks.lifecycle", "tasks.beat", "tasks.notifications"]

broker_url = _settings.redis_url
result_backend = _settings.redis_url
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
timezone = "UTC"
enable_utc = True

# A task is acknowledged only after it finishes, and a task whose worker process
# died is requeued rather than acked and lost.
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
# A process grown past this after a task is replaced (Celery counts KiB). Caps on what a
# step reads (pipeline_ops_core.egress.Limits) keep one task well below it; this clears what tasks
# leave.
worker_max_memory_per_child = _settings.worker_max_memory_mb * 1024
# No STARTED state in the result backend: step starts are recorded in the metadata DB,
# and Flower sees them through events; this saves a Redis write per task.
task_track_started = False
# Errbacks of a chord header run per failing task (the future default); ours are idempotent.
task_allow_error_cb_on_chord_header = True
# Results are tiny (ids and counts) and only needed while a chord gathers them.
result_expires = 24 * 3600
result_extended = False
worker_send_task_events = True
task_send_sent_event = True
broker_connection_retry_on_startup = True

# Redis redelivers any unacked message after `visibility_timeout`. It must outlast
# the longest step (timeout + grace) plus the longest retry countdown, or a step
# still running (or waiting to retry) is delivered a second time.
MAX_RETRY_COUNTDOWN = 3600
broker_transport_options = {
    "visibility_timeout": 86400 + _settings.time_limit_grace + MAX_RETRY_COUNTDOWN + 600,
}
result_backend_transport_options = {"retry_policy": {"timeout": 5.0}}

task_routes = {name: {"queue": CONTROL_QUEUE} for name in CONTROL_TASKS}

# Beat writes its heartbeat from its tick (tasks/heartbeat.py).
beat_scheduler = "tasks.heartbeat:HeartbeatScheduler"

beat_schedule = {
    "reap-stale-runs": {"task": REAP, "schedule": 60.0},
    # On the minute (crontab), so a 03:00 tick starts at 03:00, not up to a minute late.
    # A tick left queued past the next one is dropped: the next tick covers it.
    "dispatch-schedules": {
        "task": DISPATCH_SCHEDULES,
        "schedule": crontab(minute="*"),
        "options": {"expires": 55},
    },
}
if _settings.retention_days:
    # Daily, at a quiet minute; a prune interrupted half-way resumes the next day.
    beat_schedule["prune-old-runs"] = {
        "task": PRUNE,
        "schedule": crontab(hour="3", minute="17"),
        "options": {"expires": 3600},
    }

if _settings.eager:
    task_always_eager = True
    task_eager_propagates = False
    broker_url = "memory://"
    result_backend = "cache+memory://"
