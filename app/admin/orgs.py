"""Admin endpoints at /admin/orgs: create and list organizations."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from app.admin.schemas import OrgCreatedSchema, OrgCreateSchema, OrgListSchema
from app.web.body import json_body
from app.web.ext import services

bp = Blueprint("orgs", __name__, url_prefix="/orgs")


@bp.post("")
def create_org() -> tuple[dict[str, Any], int]:
    """Create an organization.
    ---
    post:
      summary: Create an organization; the response holds its API key, shown only this once
      tags: [admin]
      security: [{AdminKeyAuth: []}]
      requestBody:
        required: true
        content: {application/json: {schema: OrgCreateSchema}}
      responses:
        201:
          description: Created.
          content: {application/json: {schema: OrgCreatedSchema}}
        400: Problem
        401: Problem
        403: Problem
        409: Problem
        415: Problem
        422: Problem
    """
    body = json_body(OrgCreateSchema())
    name = body["name"] or body["org_slug"]
    api_key = services().orgs.create(body["org_slug"], name)
    return OrgCreatedSchema().dump({**body, "name": name, "api_key": api_key}), 201


@bp.get("")
def list_orgs() -> dict[str, Any]:
    """List organizations.
    ---
    get:
      summary: Every organization (never its key or key hash)
      tags: [admin]
      security: [{AdminKeyAuth: []}]
      responses:
        200:
          description: The organizations.
          content: {application/json: {schema: OrgListSchema}}
        401: Problem
        403: Problem
    """
    return OrgListSchema().dump({"orgs": services().store.list_orgs()})
