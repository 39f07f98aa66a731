"""Admin endpoints (X-Admin-Key, checked by app.auth's hook): an org's SaaS subscriptions.

The subscription cost pipeline (configs/subscription/costs/subscription_cost.yml) turns
them into daily amortized cost rows and FOCUS 1.3 rows.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from app.auth import check_admin_path
from app.body import json_body
from app.ext import services
from pipeline.subscriptions.service import SubscriptionService
from processors.subscription.base import BILLING_CYCLES

bp = Blueprint("admin_subscriptions", __name__, url_prefix="/admin/orgs/<org>/subscriptions")

_SUBSCRIPTION_ID = re.compile(r"sub_[0-9a-f]{16}")


class SubscriptionCreateSchema(Schema):
    class Meta:
        unknown = RAISE

    provider = fields.String(
        required=True, validate=validate.Regexp(r"^[a-z0-9_]{1,64}\Z", error="a-z, 0-9 and _")
    )
    plan = fields.String(required=True, validate=validate.Length(min=1, max=200))
    seats = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=10**6))
    unit_price = fields.Decimal(required=True, validate=validate.Range(min=0))
    currency = fields.String(load_default="USD", validate=validate.Regexp(r"^[A-Z]{3}\Z"))
    billing_cycle = fields.String(load_default="monthly", validate=validate.OneOf(BILLING_CYCLES))
    start_date = fields.Date(required=True)
    end_date = fields.Date(load_default=None, allow_none=True)

    @validates_schema
    def _dates(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("end_date") and data["end_date"] < data["start_date"]:
            raise ValidationError("must be on or after start_date", "end_date")


class SubscriptionSchema(Schema):
    subscription_id = fields.String()
    org_slug = fields.String()
    provider = fields.String()
    plan = fields.String()
    seats = fields.Integer()
    unit_price = fields.Decimal(as_string=True)
    currency = fields.String()
    billing_cycle = fields.String()
    start_date = fields.Date()
    end_date = fields.Date(allow_none=True)
    created_at = fields.DateTime()


class SubscriptionListSchema(Schema):
    subscriptions = fields.List(fields.Nested(SubscriptionSchema))


@bp.before_request
def _check_path() -> None:
    check_admin_path("malformed org slug or subscription id", subscription_id=_SUBSCRIPTION_ID)


def _service() -> SubscriptionService:
    return services().subscriptions


@bp.post("")
def add_subscription(org: str) -> tuple[dict[str, Any], int]:
    """Add a SaaS subscription.
    ---
    post:
      summary: Add a SaaS subscription (seats x unit price per billing cycle) to an org
      tags: [admin]
      security: [{AdminKeyAuth: []}]
      requestBody:
        required: true
        content: {application/json: {schema: SubscriptionCreateSchema}}
      responses:
        201:
          description: Created.
          content: {application/json: {schema: SubscriptionSchema}}
        400: Problem
        401: Problem
        404: Problem
        422: Problem
    """
    body = json_body(SubscriptionCreateSchema())
    return SubscriptionSchema().dump(_service().add(org, body)), 201


@bp.get("")
def list_subscriptions(org: str) -> dict[str, Any]:
    """List an org's SaaS subscriptions.
    ---
    get:
      summary: Every SaaS subscription of an org
      tags: [admin]
      security: [{AdminKeyAuth: []}]
      responses:
        200:
          description: The subscriptions.
          content: {application/json: {schema: SubscriptionListSchema}}
        401: Problem
        404: Problem
    """
    return SubscriptionListSchema().dump({"subscriptions": _service().list(org)})


@bp.delete("/<subscription_id>")
def remove_subscription(org: str, subscription_id: str) -> Response:
    """Remove a SaaS subscription.
    ---
    delete:
      summary: Remove a subscription (re-run the pipeline to drop its cost rows)
      tags: [admin]
      security: [{AdminKeyAuth: []}]
      responses:
        204:
          description: Removed.
        400: Problem
        401: Problem
        404: Problem
    """
    _service().remove(org, subscription_id)
    return Response(status=204)
