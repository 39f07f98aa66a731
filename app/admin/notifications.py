"""Admin endpoints under /admin/orgs/<org>: the org's notification settings."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from app.admin.paths import PathRule
from app.admin.presenters import present_notifications
from app.admin.schemas import NotificationSetSchema, NotificationSettingsSchema
from app.web.body import json_body
from app.web.ext import services
from notify.base import NotificationSettings
from pipeline.notifications import NotificationService

bp = Blueprint("notifications", __name__, url_prefix="/notifications")
PATH = PathRule()


def _notifications() -> NotificationService:
    return services().notifications


@bp.get("")
def get_notifications(org: str) -> dict[str, Any]:
    """An org's notification settings.
    ---
    get:
      summary: The org's notification events and channels (secrets are not shown)
      tags: [admin]
      security: [{AdminKeyAuth: []}]
      responses:
        200:
          description: The settings; defaults (failures, no channel) if never set.
          content: {application/json: {schema: NotificationSettingsSchema}}
        401: Problem
        403: Problem
        404: Problem
    """
    settings = _notifications().get_settings(org)
    return NotificationSettingsSchema().dump(present_notifications(settings))


@bp.put("")
def set_notifications(org: str) -> dict[str, Any]:
    """Replace an org's notification settings.
    ---
    put:
      summary: Replace the org's events and channels; a new webhook secret is shown once
      tags: [admin]
      security: [{AdminKeyAuth: []}]
      requestBody:
        required: true
        content: {application/json: {schema: NotificationSetSchema}}
      responses:
        200:
          description: The settings as saved.
          content: {application/json: {schema: NotificationSettingsSchema}}
        401: Problem
        403: Problem
        404: Problem
        415: Problem
        422: Problem
    """
    body = json_body(NotificationSetSchema())
    rotate = body.pop("rotate_webhook_secret")
    wanted = NotificationSettings(org_slug=org, **{**body, "email_to": tuple(body["email_to"])})
    saved, fresh = _notifications().set_settings(wanted, rotate_secret=rotate)
    return NotificationSettingsSchema().dump(present_notifications(saved, fresh))
