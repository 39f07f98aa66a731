"""RFC 9457 problem+json responses and the error-to-status mapping of the API.

Every error leaves as `{type, title, status, detail, code, errors?, ...}`. Details are
redacted and never carry a stack trace or a server path.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app
from marshmallow import ValidationError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.http import HTTP_STATUS_CODES

from app.web.ext import services
from pipeline.observability.redact import redact
from pipeline_ops_core.errors import (
    AlreadyExistsError,
    ConfigError,
    ConflictError,
    NotFoundError,
    PipelineOpsError,
    QuotaExceededError,
    RunNotActiveError,
    RunValidationError,
    SubscriptionInactiveError,
    TerminalError,
    TransientError,
)

log = logging.getLogger("pipeline_ops.api")

PROBLEM_MIMETYPE = "application/problem+json"
TYPE_PREFIX = "urn:pipeline-ops:problem:"
MAX_DETAIL = 2000
_URL_CREDENTIALS = re.compile(r"(://)[^/@\s]+@")

TITLES = {
    "admin_disabled": "Admin endpoints disabled",
    "already_exists": "Already exists",
    "body_too_large": "Request body too large",
    "internal_error": "Internal server error",
    "invalid_config": "Invalid pipeline configuration",
    "invalid_json": "Invalid JSON",
    "invalid_path": "Invalid path",
    "method_not_allowed": "Method not allowed",
    "not_found": "Not found",
    "nothing_to_rerun": "Nothing to re-run from",
    "quota_exceeded": "Quota exceeded",
    "rate_limited": "Too many requests",
    "run_active": "Run already active",
    "run_not_active": "Run not active",
    "run_validation_failed": "Run failed validation",
    "service_unavailable": "Service unavailable",
    "subscription_inactive": "Subscription inactive",
    "unauthorized": "Unauthorized",
    "unsupported_media_type": "Unsupported media type",
    "validation_error": "Validation failed",
}

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


# First match wins; the special cases with extra members are handled before this table.
_STATUS_BY_KIND: tuple[tuple[type[PipelineOpsError], int], ...] = (
    (AlreadyExistsError, 409),
    (RunNotActiveError, 409),
    (SubscriptionInactiveError, 403),
    (NotFoundError, 404),
    (TerminalError, 422),
    (TransientError, 503),
)


class ApiProblem(Exception):
    """Raise from a view or hook to answer with a problem document."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra


def clean(message: str) -> str:
    """Redact secrets and server paths from text that goes back to a client."""
    text = redact(_URL_CREDENTIALS.sub(r"\1[REDACTED]@", message)) or ""
    configs_dir = str(services().settings.configs_dir)
    text = text.replace(configs_dir + "/", "").replace(configs_dir, "configs")
    return text[:MAX_DETAIL]


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + code,
        "title": TITLES.get(code) or HTTP_STATUS_CODES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors is not None:
        body["errors"] = errors
    body.update(extra)
    response = current_app.response_class(
        json.dumps(body), status=status, mimetype=PROBLEM_MIMETYPE
    )
    response.headers.update(headers or {})
    return response


def field_errors(messages: Any, path: str = "") -> list[dict[str, str]]:
    """marshmallow's nested messages -> [{field, message}], e.g. field `params.x`."""
    if isinstance(messages, dict):
        out: list[dict[str, str]] = []
        for key, sub in messages.items():
            child = path if key == "_schema" else f"{path}.{key}" if path else str(key)
            out.extend(field_errors(sub, child))
        return out
    if isinstance(messages, list):
        return [item for sub in messages for item in field_errors(sub, path)]
    return [{"field": path or "_body", "message": str(messages)}]


def _domain(exc: PipelineOpsError) -> Response:
    detail = clean(str(exc))
    if isinstance(exc, ConfigError):
        errors = [{"step": step, "message": clean(msg)} for step, msg in exc.problems]
        count = f"{len(errors)} problem{'s' if len(errors) != 1 else ''}"
        # The file as the caller names it (provider/domain/pipeline.yml), never the server's
        # own path.
        source = detail.split(": ", 1)[0]
        file = "/".join(Path(source).parts[-3:]) if source.endswith((".yml", ".yaml")) else None
        return problem_response(
            422,
            "invalid_config",
            f"{file}: the pipeline configuration has {count}"
            if file
            else f"the pipeline configuration has {count}",
            errors=errors,
            file=file,
        )
    if isinstance(exc, RunValidationError):
        return problem_response(422, exc.code, detail, run_id=exc.run_id)
    if isinstance(exc, ConflictError):
        return problem_response(409, exc.code, detail, existing_run_id=exc.existing_run_id)
    if isinstance(exc, QuotaExceededError):
        return problem_response(
            429,
            exc.code,
            detail,
            headers={"Retry-After": str(max(1, int(exc.retry_after)))},
            limit=exc.limit,
            limit_value=exc.limit_value,
            current=exc.current,
        )
    for kind, status in _STATUS_BY_KIND:
        if isinstance(exc, kind):
            retry_after = getattr(exc, "retry_after", None)
            headers = {"Retry-After": str(max(1, int(retry_after)))} if retry_after else {}
            return problem_response(status, exc.code, detail, headers=headers)
    return _unexpected(exc)


def _http(exc: HTTPException) -> Response:
    status = exc.code or 500
    code = _HTTP_CODES.get(status, f"http_{status}")
    headers = {}
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        headers["Allow"] = ", ".join(exc.valid_methods)
    if status == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        return problem_response(413, code, f"the request body is larger than {limit} bytes")
    if status == 404:
        return problem_response(404, code, "the requested resource was not found")
    if status >= 500:
        return _unexpected(exc)
    return problem_response(status, code, exc.description or code, headers=headers)


def _validation(exc: ValidationError) -> Response:
    errors = field_errors(exc.messages)
    return problem_response(422, "validation_error", "the request is invalid", errors=errors)


def _database_down(exc: Exception) -> Response:
    log.warning("metadata database unavailable: %s", redact(type(exc).__name__))
    return problem_response(503, "service_unavailable", "the metadata database is unavailable")


def _unexpected(exc: BaseException) -> Response:
    log.error("unhandled error: %s", redact(f"{type(exc).__name__}: {exc}"), exc_info=exc)
    return problem_response(500, "internal_error", "an unexpected error occurred")


def _api_problem(exc: ApiProblem) -> Response:
    return problem_response(
        exc.status, exc.code, exc.detail, errors=exc.errors, headers=exc.headers, **exc.extra
    )


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ApiProblem, _api_problem)
    app.register_error_handler(PipelineOpsError, _domain)
    app.register_error_handler(ValidationError, _validation)
    app.register_error_handler(OperationalError, _database_down)
    app.register_error_handler(PoolTimeoutError, _database_down)
    app.register_error_handler(HTTPException, _http)
    app.register_error_handler(Exception, _unexpected)
