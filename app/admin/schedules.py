"""Admin endpoints under /admin/orgs/<org>: an org's pipeline schedules."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from app.admin.paths import PathRule
from app.admin.schemas import (
    DispatchListSchema,
    DispatchQuerySchema,
    ScheduleListSchema,
    ScheduleSchema,
    ScheduleSetSchema,
)
from app.web.body import json_body
from app.web.ext import services
from pipeline.schedules.service import ScheduleService

bp = Blueprint("schedules", __name__, url_prefix="/schedules")
PATH = PathRule()


def _schedules() -> ScheduleService:
    return services().schedules


@bp.get("")
def list_schedules(org: str) -> dict[str, Any]:
    """An org's schedules.
    ---
    get:
      summary: The org's pipeline schedules, with the cron in effect and the next tick
      tags: [admin]
      security: [{AdminKeyAuth: []}]
      responses:
        200:
          description: The schedules.
          content: {application/json: {schema: ScheduleListSchema}}
        401: Problem
        403: Problem
        404: Problem
    """
    return ScheduleListSchema().dump({"schedules": _schedules().list(org)})


@bp.put("/<provider>/<domain>/<pipeline>")
def set_schedule(org: str, provider: str, domain: str, pipeline: str) -> dict[str, Any]:
    """Enable, change or disable a schedule.
    ---
    put:
      summary: Create or replace the org's schedule for a pipeline (enabled unless told not)
      tags: [admin]
      security: [{AdminKeyAuth: []}]
      requestBody:
        required: false
        content: {application/json: {schema: ScheduleSetSchema}}
      responses:
        200:
          description: The schedule as saved.
          content: {application/json: {schema: ScheduleSchema}}
        401: Problem
        403: Problem
        404: Problem
        415: Problem
        422: Problem
    """
    body = json_body(ScheduleSetSchema())
    saved = _schedules().enable(org, f"{provider}/{domain}/{pipeline}", **body)
    return ScheduleSchema().dump(saved)


@bp.get("/<provider>/<domain>/<pipeline>/dispatches")
def list_dispatches(org: str, provider: str, domain: str, pipeline: str) -> dict[str, Any]:
    """What each tick did.
    ---
    get:
      summary: The schedule's dispatch records, newest first (started, skipped with reason)
      tags: [admin]
      security: [{AdminKeyAuth: []}]
      parameters: [{in: query, schema: DispatchQuerySchema}]
      responses:
        200:
          description: The dispatch records.
          content: {application/json: {schema: DispatchListSchema}}
        401: Problem
        403: Problem
        404: Problem
        422: Problem
    """
    limit = DispatchQuerySchema().load(request.args.to_dict())["limit"]
    rows = _schedules().dispatches(org, f"{provider}/{domain}/{pipeline}", limit)
    return DispatchListSchema().dump({"dispatches": rows})
