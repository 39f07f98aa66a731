"""The Flask app: create_app() registers api/ (the org API, /health, /metrics, the OpenAPI
document) and admin/ (the admin API); web/ is what both share. cli/ is `pipeline-ops`.

No business logic lives here: views parse, call a pipeline/ service, and return.
"""

from __future__ import annotations

import logging

from flask import Flask, Response

from app.web.ext import EXTENSION
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
    """The Flask app, with its services from pipeline.bootstrap.web_services() unless given
    (tests build theirs with build_services())."""
    from app import admin, api, console
    from app.web import auth
    from app.web.problems import register_error_handlers

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
    console.init_app(app, settings)
    app.after_request(_security_headers)
    # The org API and the operational endpoints; api.metrics also counts quota 429s.
    for blueprint in api.BLUEPRINTS:
        app.register_blueprint(blueprint)
    app.register_blueprint(admin.bp)
    return app
