"""The web console: server-rendered pages under /ui/ (runs, a run's timeline and logs,
pipelines, coverage, spend, quota), signed in with an org's API key or the admin key.

- The key is exchanged for Flask's signed session cookie (HttpOnly, SameSite=Lax, Secure
  when PIPELINE_OPS_PUBLIC_URL is https, path /ui), which expires after
  PIPELINE_OPS_SESSION_SECONDS; PIPELINE_OPS_SESSION_KEY signs it.
- Every form that changes something carries a CSRF token (Flask-WTF's CSRFProtect); the
  JSON APIs, which take no cookie, are exempt.
- Its own Content-Security-Policy: this origin's CSS, JS and images only, no inline
  script or style, so the pages work on an air-gapped network and nothing else runs.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from flask import Flask, Response, request
from flask_wtf.csrf import CSRFProtect

from pipeline.settings import Settings

log = logging.getLogger("pipeline_ops.console")

PREFIX = "/ui"
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)

csrf = CSRFProtect()


def _console_headers(response: Response) -> Response:
    if request.path == PREFIX or request.path.startswith(PREFIX + "/"):
        response.headers["Content-Security-Policy"] = CONSOLE_CSP
    return response


def init_app(app: Flask, settings: Settings) -> None:
    """Before the app's own after_request hook: those run last-registered first, so the
    console's CSP replaces the API's `default-src 'none'` on /ui only."""
    from app.console.views import bp

    key = settings.session_key
    if not key:
        # Sessions then last only as long as this process, and each gunicorn worker has
        # its own key: fine for one developer, which is why production requires the key.
        log.warning("PIPELINE_OPS_SESSION_KEY is not set: console sessions use a random key")
        key = secrets.token_hex(32)
    app.config.update(
        SECRET_KEY=key,
        SESSION_COOKIE_NAME="pipeline_ops_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_base_url.startswith("https://"),
        SESSION_COOKIE_PATH=PREFIX,
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=settings.session_seconds),
        WTF_CSRF_TIME_LIMIT=settings.session_seconds,
        # The token is tied to the session; the Referer check would refuse the browsers
        # that send none (Referrer-Policy: no-referrer is what this app asks for).
        WTF_CSRF_SSL_STRICT=False,
        # Checked by the console's own hook (views.py) only: the JSON APIs take their key
        # in a header, never a cookie, so there is nothing to forge there.
        WTF_CSRF_CHECK_DEFAULT=False,
    )
    csrf.init_app(app)
    app.register_blueprint(bp)
    app.after_request(_console_headers)
