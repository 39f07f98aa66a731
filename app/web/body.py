"""Reading an optional JSON request body: 413, then 415, then 400, then 422."""

from __future__ import annotations

import json
from typing import Any

from flask import request
from marshmallow import Schema
from werkzeug.exceptions import RequestEntityTooLarge

from app.web.problems import ApiProblem


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def json_body(schema: Schema) -> dict[str, Any]:
    """The body loaded through `schema`; an absent body loads as `{}`."""
    raw = request.get_data(cache=True)  # raises 413 when Content-Length is over the limit
    limit = request.max_content_length
    if limit is not None and request.content_length is None and len(raw) >= limit:
        # A chunked body is cut at the limit rather than refused: refuse it here.
        raise RequestEntityTooLarge()
    data: Any = {}
    if raw:
        if not request.is_json:
            raise ApiProblem(
                415, "unsupported_media_type", "the request body must be application/json"
            )
        try:
            data = json.loads(raw, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            raise ApiProblem(400, "invalid_json", "the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiProblem(
            422,
            "validation_error",
            "the request is invalid",
            errors=[{"field": "_body", "message": "must be a JSON object"}],
        )
    return schema.load(data)
