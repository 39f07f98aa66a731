"""The admin API (X-Admin-Key; app.web.auth checks it for everything under /admin).

One blueprint, `bp` at /admin: the organizations themselves (orgs.py, /admin/orgs) and,
nested under it, `org` at /admin/orgs/<org>, whose hook checks the path and the org of
every request once (paths.py) before the feature it reaches: credentials and API keys,
quota, schedules, notifications, subscriptions, one blueprint each. A feature declares
its `PATH`: the patterns of its own route arguments and what a malformed path is told.
"""

from __future__ import annotations

from functools import partial

from flask import Blueprint

from app.admin import credentials, notifications, orgs, quota, schedules, subscriptions
from app.admin.paths import check_org_path

FEATURES = (credentials, quota, schedules, notifications, subscriptions)

org = Blueprint("org", __name__, url_prefix="/orgs/<org>")
org.before_request(partial(check_org_path, {f.bp.name: f.PATH for f in FEATURES}))
for _feature in FEATURES:
    org.register_blueprint(_feature.bp)

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.register_blueprint(orgs.bp)
bp.register_blueprint(org)
