"""Admin endpoints (X-Admin-Key, checked by app.auth's hook): plan limits and quota usage."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.auth import SEGMENT_PATTERN
from app.body import json_body
from app.errors import ApiProblem
from app.ext import services
from pipeline_ops_core.errors import NotFoundError
from quota.plans import STATUSES

bp = Blueprint("admin_quota", __name__, url_prefix="/admin")

_LIMIT = {"strict": True, "validate": validate.Range(min=0)}


class PlanLimitsSchema(Schema):
    """Any subset of the plan; what is left out keeps its current value."""

    daily_limit = fields.Integer(**_LIMIT, metadata={"description": "Runs per UTC day."})
    monthly_limit = fields.Integer(**_LIMIT, metadata={"description": "Runs per UTC month."})
    concurrent_limit = fields.Integer(**_LIMIT, metadata={"description": "Runs active at once."})
    status = fields.String(validate=validate.OneOf(STATUSES))

    @validates_schema
    def _something(self, data: dict[str, Any], **_: Any) -> None:
        if not data:
            raise ValidationError(
                "give at least one of daily_limit, monthly_limit, concurrent_limit, status"
            )


class PlanSchema(Schema):
    org_slug = fields.String()
    status = fields.String()
    daily_limit = fields.Integer()
    monthly_limit = fields.Integer()
    concurrent_limit = fields.Integer()
    source = fields.String(metadata={"description": "database, supabase or default."})


class QuotaReportSchema(Schema):
    org_slug = fields.String()
    plan = fields.Nested(PlanSchema)
    usage = fields.Dict(metadata={"description": "Today, this month, running, leases."})
    mirror = fields.Dict(metadata={"description": "The Redis mirror's status and view."})


def _org(org: str) -> str:
    # The auth hook checks segments only under /pipelines; check this one here.
    if re.fullmatch(SEGMENT_PATTERN, org) is None:
        raise ApiProblem(
            400, "invalid_path", "path segments must be lower-case letters, digits and _"
        )
    if services().store.get_org(org) is None:
        raise NotFoundError(f"org {org!r} not found")
    return org


@bp.put("/orgs/<org>/limits")
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
    _org(org)
    body = json_body(PlanLimitsSchema())
    plan = services().plans.set_limits(
        org,
        daily=body.get("daily_limit"),
        monthly=body.get("monthly_limit"),
        concurrent=body.get("concurrent_limit"),
        status=body.get("status"),
    )
    return PlanSchema().dump(plan.as_dict())


@bp.get("/orgs/<org>/quota")
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
    _org(org)
    return QuotaReportSchema().dump(services().plans.usage(org))
