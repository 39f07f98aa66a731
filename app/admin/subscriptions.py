"""Admin endpoints under /admin/orgs/<org>: an org's SaaS subscriptions.

The subscription cost pipeline (configs/subscription/costs/subscription_cost.yml) turns
them into daily amortized cost rows and FOCUS 1.3 rows.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from app.admin.paths import PathRule
from app.admin.schemas import SubscriptionCreateSchema, SubscriptionListSchema, SubscriptionSchema
from app.web.body import json_body
from app.web.ext import services
from pipeline.subscriptions import SubscriptionService
from pipeline_ops_core.identifiers import SUBSCRIPTION_ID_RE

bp = Blueprint("subscriptions", __name__, url_prefix="/subscriptions")
PATH = PathRule("malformed org slug or subscription id", {"subscription_id": SUBSCRIPTION_ID_RE})


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
