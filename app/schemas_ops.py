"""marshmallow schemas of the admin schedule and notification endpoints."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from marshmallow import Schema, fields, validate

from app.schemas import CREDENTIAL_ID, UtcDateTime
from pipeline.schedules.service import MAX_CATCH_UP_LIMIT
from pipeline.schedules.tables import CATCH_UP_POLICIES

_HTTP_URL = validate.URL(schemes={"http", "https"}, require_tld=False)


class ScheduleSetSchema(Schema):
    enabled = fields.Boolean(load_default=True)
    credential_id = fields.String(
        load_default=None,
        allow_none=True,
        validate=CREDENTIAL_ID,
    )
    cron = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=100),
        metadata={"description": "5-field cron; null uses the pipeline YAML's `schedule`."},
    )
    timezone = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=64),
        metadata={"description": "IANA name the cron is read in; null is UTC."},
    )
    catch_up = fields.String(load_default="latest", validate=validate.OneOf(CATCH_UP_POLICIES))
    catch_up_limit = fields.Integer(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=1, max=MAX_CATCH_UP_LIMIT),
    )


class ScheduleSchema(Schema):
    org_slug = fields.String()
    pipeline_path = fields.String()
    credential_id = fields.String()
    enabled = fields.Boolean()
    cron = fields.String(allow_none=True)
    effective_cron = fields.String(allow_none=True)
    timezone = fields.String(allow_none=True)
    catch_up = fields.String()
    catch_up_limit = fields.Integer()
    last_tick = UtcDateTime(allow_none=True)
    next_tick = UtcDateTime(allow_none=True)
    created_at = UtcDateTime()
    updated_at = UtcDateTime()


class ScheduleListSchema(Schema):
    schedules = fields.List(fields.Nested(ScheduleSchema))


class DispatchSchema(Schema):
    pipeline_path = fields.String()
    scheduled_time = UtcDateTime()
    status = fields.String(metadata={"description": "claimed | started | skipped | failed"})
    run_id = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    created_at = UtcDateTime()


class DispatchListSchema(Schema):
    dispatches = fields.List(fields.Nested(DispatchSchema))


class DispatchQuerySchema(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class NotificationSetSchema(Schema):
    on_failure = fields.Boolean(load_default=True)
    on_success = fields.Boolean(load_default=False)
    webhook_url = fields.String(load_default=None, allow_none=True, validate=_HTTP_URL)
    slack_webhook_url = fields.String(load_default=None, allow_none=True, validate=_HTTP_URL)
    email_to = fields.List(fields.Email(), load_default=list, validate=validate.Length(max=20))
    rotate_webhook_secret = fields.Boolean(load_default=False)


def masked_url(url: str | None) -> str | None:
    """Where a secret-bearing URL points (a Slack webhook URL is its own credential)."""
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}/…"


def present_notifications(settings: Any, fresh_secret: str | None = None) -> dict[str, Any]:
    """NotificationSettings as the API shows them: the webhook secret only when fresh."""
    shown = {
        "org_slug": settings.org_slug,
        "on_failure": settings.on_failure,
        "on_success": settings.on_success,
        "webhook_url": settings.webhook_url,
        "webhook_secret_set": bool(settings.webhook_secret),
        "slack_webhook_url": masked_url(settings.slack_webhook_url),
        "email_to": list(settings.email_to),
        "channels": settings.channels(),
    }
    if fresh_secret:
        shown["webhook_secret"] = fresh_secret
    return shown


class NotificationSettingsSchema(Schema):
    org_slug = fields.String()
    on_failure = fields.Boolean()
    on_success = fields.Boolean()
    webhook_url = fields.String(allow_none=True)
    webhook_secret_set = fields.Boolean()
    slack_webhook_url = fields.String(
        allow_none=True, metadata={"description": "Masked: only the scheme and host."}
    )
    email_to = fields.List(fields.String())
    channels = fields.List(fields.String())
    webhook_secret = fields.String(
        metadata={"description": "Only when it was just created or rotated: shown once."},
    )
