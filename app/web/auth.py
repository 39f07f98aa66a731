"""Who may call what: org API keys for /pipelines, the admin key for /admin.

One `before_request` hook runs for every request, matched route or not, so the
order of checks is the same everywhere: key (401), path segments (400), the
path's org is the key's org (404, the same answer as an unknown org).
"""

from __future__ import annotations

import hmac
import re
from urllib.parse import urlsplit

from flask import Flask, g, request

from app.web import rate_limit
from app.web.ext import services
from app.web.problems import ApiProblem
from pipeline_ops_core.identifiers import IDENT, RUN_ID

API_KEY_HEADER = "X-API-Key"
ADMIN_KEY_HEADER = "X-Admin-Key"

# As the OpenAPI document publishes them (JSON Schema has `$`, not `\Z`; fullmatch anchors).
SEGMENT_PATTERN = f"^{IDENT}$"
RUN_ID_PATTERN = f"^{RUN_ID}$"
# Per route argument; anything not listed is a plain segment.
ARG_PATTERNS = {"run_id": RUN_ID_PATTERN}
_ANY_SEGMENT = re.compile(r"[a-z0-9_\-]{1,128}")


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def org_not_found() -> ApiProblem:
    # Deliberately the same for an unknown org and for someone else's org.
    return ApiProblem(404, "not_found", "organization not found")


def raw_path() -> str:
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.path
    if not raw.startswith("/"):  # absolute-form request target
        return urlsplit(raw).path
    return raw.split("?", 1)[0]


def _check_path() -> None:
    """Segments are plain lower-case identifiers: no traversal, no encoded slashes."""
    bad = "%" in raw_path()
    if not bad and request.view_args is not None:
        bad = any(
            not isinstance(value, str)
            or re.fullmatch(ARG_PATTERNS.get(name, SEGMENT_PATTERN), value) is None
            for name, value in request.view_args.items()
        )
    elif not bad:  # no route matched: still say 400 rather than 404 for a malformed path
        bad = any(_ANY_SEGMENT.fullmatch(s) is None for s in request.path.split("/")[2:])
    if bad:
        raise ApiProblem(
            400,
            "invalid_path",
            "path segments must be lower-case letters, digits and _ (run ids also -)",
        )


def _require_org() -> str:
    org = services().orgs.authenticate(request.headers.get(API_KEY_HEADER))
    if org is None:
        raise ApiProblem(
            401,
            "unauthorized",
            f"a valid {API_KEY_HEADER} header is required",
            headers={"WWW-Authenticate": f'ApiKey header="{API_KEY_HEADER}"'},
        )
    _check_path()
    if request.url_rule is not None and (request.view_args or {}).get("org") != org:
        raise org_not_found()
    return org


def _require_admin() -> None:
    expected = services().settings.admin_key
    if not expected:
        raise ApiProblem(
            403, "admin_disabled", "admin endpoints are disabled: no admin key is configured"
        )
    given = request.headers.get(ADMIN_KEY_HEADER, "")
    if not hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
        raise ApiProblem(
            401,
            "unauthorized",
            f"a valid {ADMIN_KEY_HEADER} header is required",
            headers={"WWW-Authenticate": f'ApiKey header="{ADMIN_KEY_HEADER}"'},
        )


def guard() -> None:
    if _under(request.path, "/pipelines"):
        g.org_slug = _require_org()
        settings = services().settings
        rate_limit.check(g.org_slug, settings.org_rate_limit, settings.redis_url)
    elif _under(request.path, "/admin"):
        _require_admin()


def init_app(app: Flask) -> None:
    app.before_request(guard)
