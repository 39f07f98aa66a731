"""POSTing a notification over HTTP, with the outcome mapped to our two error roots.

Webhook and Slack URLs are the tenant's, so every POST goes through the egress policy
(pipeline_ops_core/egress.py): a private, loopback or metadata target is refused before any
connection,
and the caps and total deadline apply. What a receiver answers is the tenant's view of
that host, so it is reported carefully: for a host the operator allow-listed, the HTTP
status; for any other host, one fixed "delivery failed", retried like a 5xx whatever
happened (connection refused, a closed port, a timeout or any non-2xx status), so the
run log can't be used to probe which ports or paths answer. The process log keeps the
detail for operators.
"""

from __future__ import annotations

import logging

import httpx

from pipeline_ops_core.egress import EgressClient, EgressRefused, policy, split_url
from pipeline_ops_core.errors import TerminalError, TransientError

TIMEOUT_SECONDS = 10.0
USER_AGENT = "pipeline-ops-notify/1"
# Slack incoming webhooks live here (commercial and GovSlack).
SLACK_HOSTS = ("hooks.slack.com", "hooks.slack-gov.com")

logger = logging.getLogger("pipeline_ops.notify")


def _retry_after(headers: httpx.Headers) -> float | None:
    raw = headers.get("Retry-After", "")
    return float(raw) if raw.isdigit() else None


def where(what: str) -> str:
    return "the Slack URL" if what == "slack" else "the webhook URL"


def hosts_for(what: str) -> tuple[str, ...] | None:
    return SLACK_HOSTS if what == "slack" else None


def check_url(url: str, what: str) -> None:
    """The save-time check: scheme, host spelling and address, known hosts, allow-list."""
    policy().check_url(url, where(what), hosts_for(what))


def post(url: str, body: bytes, headers: dict[str, str], what: str) -> None:
    """POST `body`; TransientError for timeouts, 429 and 5xx, TerminalError for other 4xx.

    Redirects are not followed: a signed request must land where it was addressed.
    """
    sent = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers}
    client = EgressClient(where(what), hosts_for(what), timeout=TIMEOUT_SECONDS)
    _, host, port = split_url(url, client.where)
    listed = client.policy.allow_listed(host, port)
    try:
        with client:
            response = client.post(url, content=body, headers=sent)
    except EgressRefused:
        raise
    except (httpx.HTTPError, OSError, TerminalError) as exc:
        # The URL is left out of every message: Slack's carries its token.
        logger.warning("%s: %s", what, type(exc).__name__)
        if isinstance(exc, httpx.TimeoutException) and listed:
            raise TransientError(f"{what}: timed out after {TIMEOUT_SECONDS}s") from exc
        if listed:
            raise TransientError(f"{what}: {type(exc).__name__}") from exc
        raise TransientError(f"{what}: delivery failed") from None
    status = response.status_code
    if status < 300:
        return
    logger.warning("%s: HTTP %d", what, status)
    if not listed:
        raise TransientError(f"{what}: delivery failed", retry_after=_retry_after(response.headers))
    if status == 429 or status >= 500:
        raise TransientError(f"{what}: HTTP {status}", retry_after=_retry_after(response.headers))
    raise TerminalError(f"{what}: HTTP {status}")
