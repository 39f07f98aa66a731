"""POSTing a notification over HTTP, with the outcome mapped to our two error roots."""

from __future__ import annotations

import httpx

from errors import TerminalError, TransientError

TIMEOUT_SECONDS = 10.0
USER_AGENT = "pipeline-ops-notify/1"


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("Retry-After", "")
    return float(raw) if raw.isdigit() else None


def post(url: str, body: bytes, headers: dict[str, str], what: str) -> None:
    """POST `body`; TransientError for timeouts, 429 and 5xx, TerminalError for other 4xx.

    Redirects are not followed: a signed request must land where it was addressed.
    """
    try:
        with httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False) as client:
            response = client.post(
                url,
                content=body,
                headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers},
            )
    except httpx.TimeoutException as exc:
        raise TransientError(f"{what}: timed out after {TIMEOUT_SECONDS}s") from exc
    except httpx.HTTPError as exc:
        # The URL is left out of the message: Slack's carries its token.
        raise TransientError(f"{what}: {type(exc).__name__}") from exc
    if response.status_code == 429 or response.status_code >= 500:
        raise TransientError(
            f"{what}: HTTP {response.status_code}", retry_after=_retry_after(response)
        )
    if response.status_code >= 300:
        raise TerminalError(f"{what}: HTTP {response.status_code}")
