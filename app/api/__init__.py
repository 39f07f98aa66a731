"""The org API (/pipelines: runs and their logs, X-API-Key) and the operational endpoints
(/health, /metrics, /openapi.json), one blueprint each."""

from __future__ import annotations

from app.api import health, logs, metrics, openapi, runs

BLUEPRINTS = (runs.bp, logs.bp, health.bp, metrics.bp, openapi.bp)
