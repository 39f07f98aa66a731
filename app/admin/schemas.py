"""marshmallow schemas of the admin API, by feature: organizations, credentials and API
keys, quota, schedules, notifications, subscriptions."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from app.web.fields import CREDENTIAL_ID, UtcDateTime
from pipeline.orgs.keys import MAX_OVERLAP_SECONDS
from pipeline.schedules.service import CATCH_UP_POLICIES, MAX_CATCH_UP_LIMIT
from pipeline_ops_core.identifiers import CURRENCY_RE, ORG_SLUG_RE, PROVIDER_RE
from processors.subscription.base import BILLING_CYCLES
from quota.plans import STATUSES

# --- organizations ----------------------------------------------------------------------


class OrgCreateSchema(Schema):
    org_slug = fields.String(
        required=True,
        validate=validate.Regexp(ORG_SLUG_RE, error="must be 2-64 of a-z, 0-9 and _"),
    )
    name = fields.String(load_default=None, validate=validate.Length(min=1, max=200))


class OrgCreatedSchema(Schema):
    org_slug = fields.String()
    name = fields.String()
    api_key = fields.String(metadata={"description": "Shown only in this response."})


class OrgSchema(Schema):
    org_slug = fields.String()
    name = fields.String()
    created_at = UtcDateTime()


class OrgListSchema(Schema):
    orgs = fields.List(fields.Nested(OrgSchema))


# --- credentials and org API keys -------------------------------------------------------


class Secret(fields.Raw):
    """A JSON object or a string. Errors describe the shape and never echo the value."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str) and value.strip():
            return value
        if isinstance(value, dict) and value:
            return value
        raise ValidationError("must be a non-empty JSON object or string")


class CredentialCreateSchema(Schema):
    provider = fields.String(
        required=True,
        validate=validate.Regexp(PROVIDER_RE, error="must be 1-64 of a-z, 0-9 and _"),
    )
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    credential_id = fields.String(
        load_default=None,
        validate=CREDENTIAL_ID,
        metadata={"description": "Default: derived from the name."},
    )
    secret = Secret(
        required=True,
        load_only=True,
        metadata={
            "description": "A JSON object with the fields the provider declares "
            "(listed by `pipeline-ops providers`), or a string stored in the field "
            "the provider declares for plain keys (OpenAI, Anthropic: admin_key). Missing "
            "or unknown fields are refused with 422. Never returned."
        },
    )


class NoBodySchema(Schema):
    """Endpoints that take no body still refuse a non-JSON or non-empty one."""


class KeyRotateSchema(Schema):
    overlap_seconds = fields.Integer(
        load_default=0,
        strict=True,
        validate=validate.Range(min=0, max=MAX_OVERLAP_SECONDS),
        metadata={"description": "How long the old key keeps working; 0 ends it now."},
    )


class KeyRevokeSchema(Schema):
    previous_only = fields.Boolean(
        load_default=False,
        metadata={"description": "Only end the overlap window of the previous key."},
    )


class CredentialSchema(Schema):
    org_slug = fields.String()
    credential_id = fields.String()
    provider = fields.String()
    name = fields.String()
    key_id = fields.String(metadata={"description": "Id of the master key wrapping it."})
    enabled = fields.Boolean()
    created_at = UtcDateTime()
    rotated_at = UtcDateTime(allow_none=True)
    disabled_at = UtcDateTime(allow_none=True)


class CredentialListSchema(Schema):
    credentials = fields.List(fields.Nested(CredentialSchema))


class KeyRotatedSchema(Schema):
    org_slug = fields.String()
    api_key = fields.String(metadata={"description": "Shown only in this response."})
    previous_key_expires_at = UtcDateTime(allow_none=True)


class KeyRevokedSchema(Schema):
    org_slug = fields.String()
    revoked = fields.String(validate=validate.OneOf(("all", "previous")))


# --- quota ------------------------------------------------------------------------------

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


# --- schedules and notifications --------------------------------------------------------

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


# --- SaaS subscriptions -----------------------------------------------------------------


class SubscriptionCreateSchema(Schema):
    class Meta:
        unknown = RAISE

    provider = fields.String(
        required=True, validate=validate.Regexp(PROVIDER_RE, error="a-z, 0-9 and _")
    )
    plan = fields.String(required=True, validate=validate.Length(min=1, max=200))
    seats = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=10**6))
    unit_price = fields.Decimal(required=True, validate=validate.Range(min=0))
    currency = fields.String(load_default="USD", validate=validate.Regexp(CURRENCY_RE))
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
