"""Organizations and their API keys.

A key is `po_<prefix>_<secret>`. Only the prefix (for lookup) and a SHA-256 of
the whole key are stored; the key itself is shown once, at creation.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

from pipeline.orgs import keys as org_keys
from pipeline.storage.run_store import SqlRunStore
from pipeline_ops_core.errors import AlreadyExistsError, TerminalError
from pipeline_ops_core.identifiers import ORG_SLUG_RE

_KEY_RE = re.compile(r"^po_([a-z0-9]{12})_([A-Za-z0-9_\-]{20,100})\Z")


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_api_key() -> tuple[str, str]:
    prefix = secrets.token_hex(6)
    return f"po_{prefix}_{secrets.token_urlsafe(32)}", prefix


class OrgService:
    def __init__(self, store: SqlRunStore) -> None:
        self.store = store

    def create(self, org_slug: str, name: str | None = None) -> str:
        """Create an org and return its API key (the only time it is visible)."""
        if not ORG_SLUG_RE.match(org_slug or ""):
            raise TerminalError(
                f"invalid org slug {org_slug!r}: use 2-64 of lower-case letters, digits and _"
            )
        if self.store.get_org(org_slug) is not None:
            raise AlreadyExistsError(f"org {org_slug!r} already exists")
        api_key, prefix = new_api_key()
        self.store.create_org(org_slug, name or org_slug, prefix, hash_key(api_key))
        return api_key

    def authenticate(self, api_key: str | None) -> str | None:
        """Return the org slug the key belongs to, or None. Constant-time hash compare.

        A rotated-out key still works until its overlap window ends; a revoked key
        never does (revocation overwrites the stored hash).
        """
        match = _KEY_RE.match(api_key or "")
        if not match:
            return None
        org = self.store.org_by_key_prefix(match.group(1))
        expected = org["api_key_hash"] if org else None
        if org is None:
            org = org_keys.by_previous_prefix(self.store, match.group(1))
            expected = org["previous_key_hash"] if org else None
        if org is None or expected is None:
            # Burn the same hash work so a miss and a wrong secret look alike.
            hmac.compare_digest(hash_key(api_key or ""), "0" * 64)
            return None
        if hmac.compare_digest(hash_key(api_key or ""), expected):
            return str(org["org_slug"])
        return None

    def rotate_key(self, org_slug: str, overlap_seconds: int = 0) -> dict[str, Any]:
        """Issue a new key; the old one keeps working for `overlap_seconds` (0: not at all).

        Returns {api_key, previous_key_expires_at}; the new key is shown only here.
        """
        if not 0 <= overlap_seconds <= org_keys.MAX_OVERLAP_SECONDS:
            raise TerminalError(
                f"overlap_seconds must be 0-{org_keys.MAX_OVERLAP_SECONDS}, got {overlap_seconds}"
            )
        api_key, prefix = new_api_key()
        expires = org_keys.rotate(self.store, org_slug, prefix, hash_key(api_key), overlap_seconds)
        return {"api_key": api_key, "previous_key_expires_at": expires}

    def revoke_key(self, org_slug: str, previous_only: bool = False) -> None:
        """Revoke the org's keys (current and previous), or only the previous one.

        After a full revocation the org has no working key until `rotate_key`.
        """
        org_keys.revoke(self.store, org_slug, previous_only)
