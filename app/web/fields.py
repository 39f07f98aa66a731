"""marshmallow fields and validators both API surfaces (api/, admin/) use."""

from __future__ import annotations

import re
from datetime import UTC, date
from typing import Any

from marshmallow import fields, validate

from pipeline_ops_core.identifiers import CREDENTIAL_ID_RE

DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
CREDENTIAL_ID = validate.Regexp(CREDENTIAL_ID_RE, error="must be 1-128 of a-z, 0-9, _ and -")


class IsoDate(fields.Date):
    """Exactly YYYY-MM-DD (Python 3.11's fromisoformat alone also takes 20240101)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> date:
        if not isinstance(value, str) or DATE_RE.fullmatch(value) is None:
            raise self.make_error("invalid")
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise self.make_error("invalid") from None


class UtcDateTime(fields.DateTime):
    """ISO 8601 in UTC with an explicit offset; naive values are taken as UTC."""

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return str(value.astimezone(UTC).isoformat())
