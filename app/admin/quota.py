"""Admin endpoints under /admin/orgs/<org>: plan limits and quota usage."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from app.admin.paths import PathRule
from app.admin.schemas import PlanLimitsSchema, PlanSchema, QuotaReportSchema
from app.web.body import json_body
from app.web.ext import services

bp = Blueprint("quota", __name__)
PATH = PathRule()


@bp.put("/limits")
def set_limits(org: str) -> dict[str, Any]:
    """Set an organization's plan limits.
    ---
    put:
      summary: Set plan limits and status; fields left out keep their value
      tags: [admin]
      security: [{AdminKeyAuth: []}]
      requestBody:
        required: true
        content: {application/json: {schema: PlanLimitsSchema}}
      responses:
        200:
          description: The plan now in force (other processes pick it up at once).
          content: {application/json: {schema: PlanSchema}}
        400: Problem
        401: Problem
        403: Problem
        404: Problem
        415: Problem
        422: Problem
    """
    body = json_body(PlanLimitsSchema())
    plan = services().plans.set_limits(
        org,
        daily=body.get("daily_limit"),
        monthly=body.get("monthly_limit"),
        concurrent=body.get("concurrent_limit"),
        status=body.get("status"),
    )
    return PlanSchema().dump(plan.as_dict())


@bp.get("/quota")
def quota_usage(org: str) -> dict[str, Any]:
    """An organization's quota usage.
    ---
    get:
      summary: Limits, usage today and this month, running runs and their leases
      tags: [admin]
      security: [{AdminKeyAuth: []}]
      responses:
        200:
          description: The report.
          content: {application/json: {schema: QuotaReportSchema}}
        400: Problem
        401: Problem
        403: Problem
        404: Problem
    """
    return QuotaReportSchema().dump(services().plans.usage(org))
