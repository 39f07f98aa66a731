"""The Celery tasks the workers run (steps, the run lifecycle, the schedule tick,
notifications), by the names pipeline/queue.py sends them under."""
