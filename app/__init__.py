"""The Flask API: create_app(), blueprints, auth, schemas, problem+json errors.

No business logic lives here: views parse, call a pipeline/ service, and return.
"""

from __future__ import annotations

import logging

from flask import Flask, Response

from app.ext import EXTENSION
from pipeline.bootstrap import Services, web_services
from pipeline.observability.logs import configure_logging
from pipeline.settings import Settings

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


def _security_headers(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def create_app(settings: Settings | None = None, services: Services | None = None) -> Flask:
    from app import auth, openapi, views_admin, views_health, views_logs, views_pipelines
    from app.errors import register_error_handlers

    if services is None:
        services = web_services(settings)
    settings = settings or services.settings
    if not logging.getLogger().handlers:
        # Under gunicorn nothing configured the root logger yet; tests and the CLI did.
        configure_logging(settings.log_level)

    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions[EXTENSION] = services

    register_error_handlers(app)
    auth.init_app(app)
    app.after_request(_security_headers)
    for module in (views_pipelines, views_logs, views_admin, views_health, openapi):
        app.register_blueprint(module.bp)
    # Schedules, notifications and /metrics (issue 7); views_metrics also counts 429s.
    from app import views_admin_notifications, views_admin_schedules, views_metrics

    for module in (views_admin_schedules, views_admin_notifications, views_metrics):
        app.register_blueprint(module.bp)
    from app.views_admin_credentials import bp as admin_credentials  # issue 4

    app.register_blueprint(admin_credentials)
    from app.views_admin_quota import bp as admin_quota  # issue 3

    app.register_blueprint(admin_quota)
    from app.views_admin_subscriptions import bp as admin_subscriptions  # issue 5

    app.register_blueprint(admin_subscriptions)
    return app
