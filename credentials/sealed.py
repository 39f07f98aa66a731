"""Secrets of an org that are not provider credentials, kept in the vault.

A webhook's HMAC signing secret and a Slack incoming-webhook URL (the URL is itself the
credential) are sealed exactly like credentials — a random data key per value, wrapped by
the master key — in `org_sealed_secrets`, and re-wrapped by `rotate-master` with them.
The associated data binds the org and the secret's name, so a value copied to another
org's row, or under another name, fails to open. Nothing here ever returns a value to
the API: only the sending side opens them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, delete, insert, select, update

from credentials.crypto import Sealed, open_sealed, seal
from credentials.keys import KeyProvider
from credentials.models import org_sealed_secrets as t

# The "provider" the associated data names for these values.
KIND = "sealed-secret"


def seal_value(keys: KeyProvider, org_slug: str, name: str, value: str) -> Sealed:
    return seal(keys, org_slug, name, KIND, {"value": value})


def open_value(keys: KeyProvider, org_slug: str, name: str, sealed: Sealed) -> str:
    return str(open_sealed(keys, org_slug, name, KIND, sealed)["value"])


def put_sealed(
    conn: Connection, keys: KeyProvider, org_slug: str, name: str, value: str, now: datetime
) -> None:
    """Insert or replace one sealed value inside the caller's transaction."""
    sealed = seal_value(keys, org_slug, name, value)
    values = {
        "key_id": sealed.key_id,
        "wrapped_key": sealed.wrapped_key,
        "nonce": sealed.nonce,
        "ciphertext": sealed.ciphertext,
        "updated_at": now,
    }
    key = (t.c.org_slug == org_slug, t.c.name == name)
    if not conn.execute(update(t).where(*key).values(**values)).rowcount:
        conn.execute(insert(t).values(org_slug=org_slug, name=name, **values))


class SealedSecrets:
    """get/put of an org's named secrets (notify.store.SecretStore)."""

    def __init__(
        self,
        engine: Engine,
        keys: KeyProvider,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine, self.keys, self.clock = engine, keys, clock

    def get(self, org_slug: str, name: str) -> str | None:
        query = select(t.c.key_id, t.c.wrapped_key, t.c.nonce, t.c.ciphertext).where(
            t.c.org_slug == org_slug, t.c.name == name
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return open_value(self.keys, org_slug, name, Sealed(row[0], row[1], row[2], row[3]))

    def put(self, org_slug: str, name: str, value: str | None) -> None:
        """Store `value` sealed; None removes it."""
        with self.engine.begin() as conn:
            if value is None:
                conn.execute(delete(t).where(t.c.org_slug == org_slug, t.c.name == name))
            else:
                put_sealed(conn, self.keys, org_slug, name, value, self.clock())
