"""The engine: pipeline definitions, runs and their records, organizations, schedules,
backfills, notifications and subscriptions, and the composition root (bootstrap.py) that
builds them from Settings for the API, the workers and the CLI."""
