"""The check every request under /admin/orgs/<org> passes once, before its feature runs.

First the path (400 `invalid_path`): no percent-encoding, the org a slug, and each route
argument the feature declares in its `PATH` matching its pattern; then the org (404). A
feature's other arguments (a schedule's provider/domain/pipeline) are its service's to
check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from flask import request

from app.web.auth import raw_path
from app.web.ext import services
from app.web.problems import ApiProblem
from pipeline_ops_core.errors import NotFoundError
from pipeline_ops_core.identifiers import ORG_SLUG_RE

DEFAULT_DETAIL = "path segments must be lower-case letters, digits and _"


@dataclass(frozen=True)
class PathRule:
    """What a feature's path may hold besides the org, and what a malformed one is told."""

    detail: str = DEFAULT_DETAIL
    patterns: dict[str, re.Pattern[str]] = field(default_factory=dict)


def check_org_path(rules: dict[str, PathRule]) -> None:
    """before_request of the org blueprint; `rules` by feature blueprint name."""
    rule = rules.get((request.blueprint or "").rsplit(".", 1)[-1], PathRule())
    patterns = {"org": ORG_SLUG_RE, **rule.patterns}
    args = request.view_args or {}
    bad = "%" in raw_path() or any(
        not isinstance(value, str) or patterns[name].fullmatch(value) is None
        for name, value in args.items()
        if name in patterns
    )
    if bad:
        raise ApiProblem(400, "invalid_path", rule.detail)
    org = args.get("org")
    if org is not None and services().store.get_org(org) is None:
        raise NotFoundError(f"org {org!r} not found")
