"""marshmallow schemas of the org API (/pipelines) and /health: request bodies and queries
(load) and responses (dump), and the problem document every error is.

The OpenAPI document is generated from these, so they are the API's contract.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.web.fields import CREDENTIAL_ID, IsoDate, UtcDateTime
from pipeline.runs.service import MAX_RANGE_DAYS
from pipeline.storage import state
from pipeline.storage.records import RunRecord
from pipeline_ops_core.identifiers import IDENT_RE, RUN_ID_RE

PARAM_KEY_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
MAX_PARAMS = 50
MAX_PARAM_CHARS = 1024
STATUSES = state.ALL


# --- fields ---------------------------------------------------------------------------


def encode_cursor(run: RunRecord) -> str:
    raw = f"{run.created_at.astimezone(UTC).isoformat()}|{run.run_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


class Cursor(fields.String):
    """The opaque history cursor: urlsafe base64 of `created_at|run_id`."""

    default_error_messages = {"invalid": "Not a valid cursor."}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            created_text, run_id = raw.split("|")
            created = datetime.fromisoformat(created_text)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise self.make_error("invalid") from None
        if created.tzinfo is None or RUN_ID_RE.fullmatch(run_id) is None:
            raise self.make_error("invalid")
        return created.astimezone(UTC), run_id


def _check_params(value: dict[str, Any]) -> None:
    if len(value) > MAX_PARAMS:
        raise ValidationError(f"at most {MAX_PARAMS} params are allowed")
    for key, item in value.items():
        if PARAM_KEY_RE.fullmatch(key) is None:
            raise ValidationError("param names are 1-64 of letters, digits, _ . and -")
        if isinstance(item, float) and not math.isfinite(item):
            raise ValidationError(f"param {key!r} must be a finite number")
        if isinstance(item, str) and len(item) > MAX_PARAM_CHARS:
            raise ValidationError(f"param {key!r} is longer than {MAX_PARAM_CHARS} characters")
        if item is not None and not isinstance(item, str | int | float | bool):
            raise ValidationError(f"param {key!r} must be a string, number, boolean or null")


# --- requests -------------------------------------------------------------------------


class RunRequestSchema(Schema):
    start_date = IsoDate(load_default=None, allow_none=True)
    end_date = IsoDate(load_default=None, allow_none=True)
    credential_id = fields.String(
        load_default=None,
        allow_none=True,
        validate=CREDENTIAL_ID,
    )
    params = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(allow_none=True),
        load_default=dict,
        validate=_check_params,
    )

    @validates_schema
    def _check_range(self, data: dict[str, Any], **kwargs: Any) -> None:
        start, end = data.get("start_date"), data.get("end_date")
        if start and end and end < start:
            raise ValidationError("end_date must not be before start_date", "end_date")
        if start and end and (end - start).days + 1 > MAX_RANGE_DAYS:
            raise ValidationError(f"the range is longer than {MAX_RANGE_DAYS} days", "end_date")


class RerunRequestSchema(Schema):
    # True: reuse the steps the run completed and start at the one that failed.
    from_failed = fields.Boolean(load_default=False)


class HistoryQuerySchema(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = Cursor(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))
    pipeline_id = fields.String(
        load_default=None, validate=validate.Regexp(IDENT_RE, error="must match ^[a-z0-9_]+$")
    )


# --- responses ------------------------------------------------------------------------


def _duration_ms(obj: dict[str, Any]) -> int | None:
    # Runs are dumped from `RunRecord.as_dict()`: the presenters hand schemas dicts.
    started, ended = obj.get("started_at"), obj.get("ended_at")
    if started is None or ended is None:
        return None
    return int((ended - started).total_seconds() * 1000)


class LinksSchema(Schema):
    status = fields.String()
    logs = fields.String()


class RunAcceptedSchema(Schema):
    run_id = fields.String()
    status = fields.String()
    pipeline_id = fields.String()
    links = fields.Nested(LinksSchema)


class RunSchema(Schema):
    run_id = fields.String()
    org_slug = fields.String()
    pipeline_id = fields.String()
    pipeline_path = fields.String()
    status = fields.String()
    trigger = fields.String()
    credential_id = fields.String()
    start_date = fields.Date()
    end_date = fields.Date()
    params = fields.Dict()
    created_at = UtcDateTime()
    started_at = UtcDateTime(allow_none=True)
    ended_at = UtcDateTime(allow_none=True)
    duration_ms = fields.Function(_duration_ms, allow_none=True)
    error_message = fields.String(allow_none=True)


class StepSummarySchema(Schema):
    step_id = fields.String()
    status = fields.String()
    attempts = fields.Integer()
    rows_written = fields.Integer(allow_none=True)


class RunStatusSchema(RunSchema):
    steps = fields.List(fields.Nested(StepSummarySchema))
    rows_written = fields.Integer(
        metadata={"description": "Rows the completed step attempts wrote, all steps together."}
    )
    warnings = fields.List(
        fields.String(),
        metadata={"description": "E.g. a load that found no rows in the run's dates."},
    )


class HistorySchema(Schema):
    runs = fields.List(fields.Nested(RunSchema))
    next_cursor = fields.String(allow_none=True)


class LogLineSchema(Schema):
    ts = UtcDateTime()
    level = fields.String()
    step_id = fields.String(allow_none=True)
    attempt = fields.Integer(allow_none=True)
    message = fields.String()


class RunLogsSchema(Schema):
    run = fields.Nested(RunSchema)
    lines = fields.List(fields.Nested(LogLineSchema))


class StepAttemptSchema(Schema):
    step_id = fields.String()
    attempt = fields.Integer()
    status = fields.String()
    started_at = UtcDateTime()
    ended_at = UtcDateTime(allow_none=True)
    duration_ms = fields.Integer(allow_none=True)
    rows_written = fields.Integer()
    error = fields.String(allow_none=True)


class StepAttemptsSchema(Schema):
    steps = fields.List(fields.Nested(StepAttemptSchema))


class TransitionSchema(Schema):
    from_status = fields.String(allow_none=True)
    to_status = fields.String()
    at = UtcDateTime()
    reason = fields.String(allow_none=True)


class TransitionsSchema(Schema):
    transitions = fields.List(fields.Nested(TransitionSchema))


class HealthChecksSchema(Schema):
    database = fields.String()
    redis = fields.String()
    warehouse = fields.String()


class HeartbeatsSchema(Schema):
    workers = fields.Dict(
        keys=fields.String(),
        values=fields.Float(),
        metadata={"description": "Seconds since each worker's last heartbeat, by node name."},
    )
    beat = fields.Float(
        allow_none=True, metadata={"description": "Seconds since beat's last tick; null: none."}
    )


class HealthSchema(Schema):
    status = fields.String(validate=validate.OneOf(("ok", "degraded", "unavailable")))
    checks = fields.Nested(HealthChecksSchema)
    heartbeats = fields.Nested(HeartbeatsSchema)


class LiveSchema(Schema):
    status = fields.String()


class ProblemSchema(Schema):
    """RFC 9457 problem details, plus `code` and the members some errors add."""

    type = fields.String()
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    code = fields.String()
    errors = fields.List(fields.Dict())
    run_id = fields.String()
    existing_run_id = fields.String()
    limit = fields.String(validate=validate.OneOf(("daily", "monthly", "concurrent")))
    limit_value = fields.Integer()
    current = fields.Integer()
