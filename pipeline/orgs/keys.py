"""Org API key rotation and revocation: the SQL behind OrgService.rotate_key/revoke_key.

Rotation moves the current prefix and hash to the `previous_key_*` columns with an
expiry (the overlap window) and installs the new ones in one conditional UPDATE.
Revocation overwrites the stored hash with a value no SHA-256 hex digest can equal,
so even a code path that forgot to check `key_revoked_at` can't accept the key.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from pipeline.storage.run_store import SqlRunStore
from pipeline.storage.statements import as_utc
from pipeline.storage.tables import organizations as o
from pipeline_ops_core.errors import NotFoundError, TransientError

MAX_OVERLAP_SECONDS = 30 * 24 * 3600
# ':' never occurs in a hex digest, so a revoked hash matches no key.
REVOKED_PREFIX = "revoked:"


def revoked_hash() -> str:
    return REVOKED_PREFIX + secrets.token_hex(28)


def by_previous_prefix(store: SqlRunStore, prefix: str) -> dict[str, Any] | None:
    """The org whose previous key has this prefix, if its overlap window is still open."""
    query = select(o.c.org_slug, o.c.previous_key_hash, o.c.previous_key_expires_at).where(
        o.c.previous_key_prefix == prefix
    )
    with store.engine.connect() as conn:
        row = conn.execute(query).mappings().first()
    if row is None:
        return None
    expires = as_utc(row["previous_key_expires_at"])
    if expires is None or expires <= store.clock():
        return None
    return dict(row)


def rotate(
    store: SqlRunStore, org_slug: str, prefix: str, key_hash: str, overlap_seconds: int
) -> datetime | None:
    """Install a new key; returns when the previous key stops working (None: now)."""
    now = store.clock()
    with store.engine.begin() as conn:
        org = conn.execute(
            select(o.c.api_key_prefix, o.c.api_key_hash).where(o.c.org_slug == org_slug)
        ).first()
        if org is None:
            raise NotFoundError(f"org {org_slug!r} not found")
        # A revoked key is never carried over into an overlap window.
        keep = overlap_seconds > 0 and not org.api_key_hash.startswith(REVOKED_PREFIX)
        expires = now + timedelta(seconds=overlap_seconds) if keep else None
        moved = conn.execute(
            update(o)
            .where(o.c.org_slug == org_slug, o.c.api_key_hash == org.api_key_hash)
            .values(
                api_key_prefix=prefix,
                api_key_hash=key_hash,
                previous_key_prefix=org.api_key_prefix if keep else None,
                previous_key_hash=org.api_key_hash if keep else None,
                previous_key_expires_at=expires,
                key_rotated_at=now,
                key_revoked_at=None,
            )
        ).rowcount
    if not moved:
        raise TransientError(f"the key of org {org_slug!r} changed concurrently; try again")
    return expires


def revoke(store: SqlRunStore, org_slug: str, previous_only: bool) -> None:
    values: dict[str, Any] = {
        "previous_key_prefix": None,
        "previous_key_hash": None,
        "previous_key_expires_at": None,
    }
    if not previous_only:
        values.update(api_key_hash=revoked_hash(), key_revoked_at=store.clock())
    with store.engine.begin() as conn:
        found = conn.execute(update(o).where(o.c.org_slug == org_slug).values(**values)).rowcount
    if not found:
        raise NotFoundError(f"org {org_slug!r} not found")
