"""marshmallow schemas of the admin credential and org-key endpoints."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from app.schemas import CREDENTIAL_ID, UtcDateTime
from pipeline.orgs.keys import MAX_OVERLAP_SECONDS

PROVIDER_RE = r"^[a-z0-9_]{1,64}\Z"


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
