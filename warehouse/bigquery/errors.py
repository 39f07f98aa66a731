"""Translate BigQuery errors into TransientError (retry) or TerminalError (fail now).

BigQuery reports the cause as a `reason` on each error (`exc.errors`), and the HTTP status
alone misleads: rateLimitExceeded comes as 403, like accessDenied. So the reason decides
first, then the message (concurrent DML conflicts are `invalidQuery` by reason), then the
status. Every message names the job, so the run log points at it in the console.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import requests
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc

from pipeline_ops_core.errors import PipelineOpsError, TerminalError, TransientError

TRANSIENT_REASONS = frozenset(
    {
        "rateLimitExceeded",
        "jobRateLimitExceeded",
        "quotaExceeded",
        "backendError",
        "internalError",
        "jobBackendError",
        "jobInternalError",
    }
)
TERMINAL_REASONS = frozenset(
    {
        "invalid",
        "invalidQuery",
        "notFound",
        "accessDenied",
        "duplicate",
        "billingNotEnabled",
        "billingTierLimitExceeded",
        "resourcesExceeded",
        "responseTooLarge",
        "stopped",
    }
)
# Concurrent DML on one table: BigQuery aborts one transaction; running it again succeeds.
CONCURRENT_MARKERS = (
    "concurrent update",
    "could not serialize access",
    "aborted due to concurrent",
    "transaction is aborted",
)


class BigQueryError(TerminalError):
    """A terminal BigQuery failure; `reason` is BigQuery's, `job_id` the job's if any."""

    code = "warehouse_error"

    def __init__(self, message: str, reason: str = "", job_id: str | None = None) -> None:
        super().__init__(message)
        self.reason, self.job_id = reason, job_id


class BigQueryTransientError(TransientError):
    code = "warehouse_busy"

    def __init__(self, message: str, reason: str = "", job_id: str | None = None) -> None:
        super().__init__(message, retry_after=5.0)
        self.reason, self.job_id = reason, job_id


def reasons_of(exc: BaseException) -> list[str]:
    errors = getattr(exc, "errors", None) or []
    return [str(e.get("reason", "")) for e in errors if isinstance(e, dict)]


def _message_of(exc: BaseException) -> str:
    errors = getattr(exc, "errors", None) or []
    for e in errors:
        if isinstance(e, dict) and e.get("message"):
            return str(e["message"])
    text = getattr(exc, "message", None) or str(exc)
    return str(text).strip().splitlines()[0] if str(text).strip() else type(exc).__name__


def classify(exc: BaseException) -> tuple[bool, str]:
    """(transient?, reason) for an error raised by the client or a job."""
    reasons = reasons_of(exc)
    text = _message_of(exc).lower()
    if any(marker in text for marker in CONCURRENT_MARKERS):
        return True, "concurrentUpdate"
    for reason in reasons:
        if reason in TRANSIENT_REASONS:
            return True, reason
    for reason in reasons:
        if reason in TERMINAL_REASONS:
            return False, reason
    if isinstance(exc, gexc.GoogleAPICallError):
        code = int(exc.code or 0)
        name = type(exc).__name__
        # 5xx, 429 and a lost etag race (412) go away on their own; other 4xx do not.
        return code >= 500 or code in (408, 429, 412), reasons[0] if reasons else name
    if isinstance(exc, (gexc.RetryError, requests.ConnectionError, requests.Timeout)):
        return True, type(exc).__name__
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True, type(exc).__name__
    if isinstance(exc, auth_exc.TransportError):
        return True, "authTransport"
    if isinstance(exc, auth_exc.GoogleAuthError):
        return False, "authError"
    return False, reasons[0] if reasons else type(exc).__name__


def translate(exc: BaseException, what: str, job_id: str | None = None) -> PipelineOpsError:
    transient, reason = classify(exc)
    job = f" (job {job_id})" if job_id else ""
    message = f"BigQuery {what} failed{job}: {reason}: {_message_of(exc)}"
    if transient:
        return BigQueryTransientError(message, reason, job_id)
    return BigQueryError(message, reason, job_id)


# Errors worth translating; anything else is a bug of ours and keeps its traceback.
_TRANSLATED = (
    gexc.GoogleAPIError,
    requests.RequestException,
    auth_exc.GoogleAuthError,
    ConnectionError,
    TimeoutError,
)


@contextmanager
def bq_errors(what: str, job_id: str | None = None) -> Iterator[None]:
    try:
        yield
    except PipelineOpsError:
        raise
    except _TRANSLATED as exc:
        raise translate(exc, what, job_id or getattr(exc, "job_id", None)) from exc
