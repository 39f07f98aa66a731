"""Admin endpoints under /admin/orgs/<org>: credentials and org API keys.

Nothing here ever returns a secret: credentials come back as metadata, and a new
org key is shown once, in the rotate response.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from app.admin.paths import PathRule
from app.admin.schemas import (
    CredentialCreateSchema,
    CredentialListSchema,
    CredentialSchema,
    KeyRevokedSchema,
    KeyRevokeSchema,
    KeyRotatedSchema,
    KeyRotateSchema,
    NoBodySchema,
)
from app.web.body import json_body
from app.web.ext import services
from pipeline.definition.credential_check import checked_secret
from pipeline.definition.providers import check_credential_urls
from pipeline.observability.redact import register_credential, secret_scope
from pipeline_ops_core.identifiers import CREDENTIAL_ID_RE

bp = Blueprint("credentials", __name__)
PATH = PathRule(
    "org and credential ids are lower-case letters, digits, _ (and -)",
    {"credential_id": CREDENTIAL_ID_RE},
)


@bp.post("/credentials")
def add_credential(org: str) -> tuple[dict[str, Any], int]:
    """Store an encrypted credential.
    ---
    post:
      summary: Encrypt and store a provider credential for the org; the secret is never returned
      tags: [admin]
      security: [{AdminKeyAuth: []}]
      requestBody:
        required: true
        content: {application/json: {schema: CredentialCreateSchema}}
      responses:
        201:
          description: Stored; its metadata.
          content: {application/json: {schema: CredentialSchema}}
        400: Problem
        401: Problem
        403: Problem
        404: Problem
        409: Problem
        413: Problem
        415: Problem
        422: Problem
    """
    body = json_body(CredentialCreateSchema())
    # This request saw the plaintext: mask it in anything it logs until it answers.
    with secret_scope():
        register_credential(None, body["secret"])
        secret = checked_secret(body["provider"], body["secret"])
        check_credential_urls(body["provider"], secret)
        meta = services().credentials.add(
            org, body["provider"], body["name"], secret, body["credential_id"]
        )
    return CredentialSchema().dump(meta), 201


@bp.get("/credentials")
def list_credentials(org: str) -> dict[str, Any]:
    """The org's credentials.
    ---
    get:
      summary: The org's credentials, metadata only
      tags: [admin]
      security: [{AdminKeyAuth: []}]
      responses:
        200:
          description: The credentials.
          content: {application/json: {schema: CredentialListSchema}}
        400: Problem
        401: Problem
        403: Problem
        404: Problem
    """
    return CredentialListSchema().dump({"credentials": services().credentials.list(org)})


def _set_enabled(org: str, credential_id: str, enabled: bool) -> dict[str, Any]:
    json_body(NoBodySchema())
    return CredentialSchema().dump(services().credentials.set_enabled(org, credential_id, enabled))


@bp.post("/credentials/<credential_id>/disable")
def disable_credential(org: str, credential_id: str) -> dict[str, Any]:
    """Disable a credential.
    ---
    post:
      summary: Disable a credential; runs asking for it are refused with 422
      tags: [admin]
      security: [{AdminKeyAuth: []}]
      responses:
        200:
          description: Its metadata.
          content: {application/json: {schema: CredentialSchema}}
        400: Problem
        401: Problem
        403: Problem
        404: Problem
        415: Problem
        422: Problem
    """
    return _set_enabled(org, credential_id, False)


@bp.post("/credentials/<credential_id>/enable")
def enable_credential(org: str, credential_id: str) -> dict[str, Any]:
    """Enable a credential.
    ---
    post:
      summary: Enable a disabled credential
      tags: [admin]
      security: [{AdminKeyAuth: []}]
      responses:
        200:
          description: Its metadata.
          content: {application/json: {schema: CredentialSchema}}
        400: Problem
        401: Problem
        403: Problem
        404: Problem
        415: Problem
        422: Problem
    """
    return _set_enabled(org, credential_id, True)


@bp.delete("/credentials/<credential_id>")
def delete_credential(org: str, credential_id: str) -> Response:
    """Delete a credential.
    ---
    delete:
      summary: Delete a credential and its ciphertext
      tags: [admin]
      security: [{AdminKeyAuth: []}]
      responses:
        204:
          description: Deleted.
        400: Problem
        401: Problem
        403: Problem
        404: Problem
        415: Problem
        422: Problem
    """
    json_body(NoBodySchema())
    services().credentials.delete(org, credential_id)
    return Response(status=204)


@bp.post("/rotate-key")
def rotate_key(org: str) -> dict[str, Any]:
    """Rotate the org's API key.
    ---
    post:
      summary: Issue a new org API key (shown once); the old one works for overlap_seconds
      tags: [admin]
      security: [{AdminKeyAuth: []}]
      requestBody:
        required: false
        content: {application/json: {schema: KeyRotateSchema}}
      responses:
        200:
          description: The new key.
          content: {application/json: {schema: KeyRotatedSchema}}
        400: Problem
        401: Problem
        403: Problem
        404: Problem
        415: Problem
        422: Problem
    """
    body = json_body(KeyRotateSchema())
    rotated = services().orgs.rotate_key(org, body["overlap_seconds"])
    return KeyRotatedSchema().dump({"org_slug": org, **rotated})


@bp.post("/revoke-key")
def revoke_key(org: str) -> dict[str, Any]:
    """Revoke the org's API key(s).
    ---
    post:
      summary: Revoke the org's keys (current and previous), or only the previous one
      tags: [admin]
      security: [{AdminKeyAuth: []}]
      requestBody:
        required: false
        content: {application/json: {schema: KeyRevokeSchema}}
      responses:
        200:
          description: What was revoked.
          content: {application/json: {schema: KeyRevokedSchema}}
        400: Problem
        401: Problem
        403: Problem
        404: Problem
        415: Problem
        422: Problem
    """
    body = json_body(KeyRevokeSchema())
    services().orgs.revoke_key(org, body["previous_only"])
    revoked = "previous" if body["previous_only"] else "all"
    return KeyRevokedSchema().dump({"org_slug": org, "revoked": revoked})
