"""The credential vault: encrypted credentials per org in the metadata database.

`VaultCredentialProvider` is the CredentialProvider the engine uses by default.
Decryption (`get`) happens only where a step runs; the API and the CLI only
store, list, disable and delete, and they never read a secret back.

`default` keeps its old meaning when nothing is stored under that id: "no secret",
an empty credential any pipeline may use (the demo needs none). Storing a
credential with id `default` replaces that meaning for the org.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from credentials.base import (
    CREDENTIAL_ID_DOC,
    DEFAULT_ID,
    IMPLICIT_DEFAULT,
    CredentialInfo,
)
from credentials.crypto import Sealed, open_sealed, seal, unwrap_data_key
from credentials.errors import CredentialError
from credentials.keys import KeyProvider
from credentials.models import org_credentials as t
from pipeline_ops_core.errors import AlreadyExistsError, NotFoundError, TerminalError
from pipeline_ops_core.identifiers import CREDENTIAL_ID_RE, PROVIDER_RE

MAX_SECRET_BYTES = 64 * 1024
MAX_NAME = 200
# Everything but the sealed columns: what list/describe may show.
METADATA_COLUMNS = (
    t.c.org_slug,
    t.c.credential_id,
    t.c.provider,
    t.c.name,
    t.c.key_id,
    t.c.enabled,
    t.c.created_at,
    t.c.rotated_at,
    t.c.disabled_at,
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _meta(row: Any) -> dict[str, Any]:
    out = dict(row)
    for key, value in out.items():
        if isinstance(value, datetime) and value.tzinfo is None:
            out[key] = value.replace(tzinfo=UTC)  # SQLite hands back naive UTC
    return out


def parse_secret(
    raw: str | bytes | Mapping[str, Any], plain_field: str | None = "api_key"
) -> dict[str, Any]:
    """A secret as given: a JSON object, or any other text, stored as {plain_field: text}
    (refused when `plain_field` is None: that kind of credential has several fields).

    Errors describe the shape, never the value.
    """
    if isinstance(raw, Mapping):
        value: Any = dict(raw)
    else:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        text = text.strip()
        if not text:
            raise TerminalError("the secret is empty")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        if not isinstance(value, dict):  # a JSON string, or any raw text (even "12345")
            if plain_field is None:
                raise TerminalError("the secret must be a JSON object, not plain text")
            value = {plain_field: value if isinstance(value, str) else text}
    if not isinstance(value, dict) or not value:
        raise TerminalError("the secret must be a non-empty JSON object or a plain string")
    if len(json.dumps(value)) > MAX_SECRET_BYTES:
        raise TerminalError(f"the secret is larger than {MAX_SECRET_BYTES // 1024} KiB")
    return value


def slug_id(name: str) -> str:
    """A credential id derived from a display name: `Prod OpenAI` -> `prod_openai`."""
    return re.sub(r"[^a-z0-9_\-]+", "_", name.lower()).strip("_")[:128]


class VaultCredentialProvider:
    def __init__(
        self,
        engine: Engine,
        keys: KeyProvider,
        *,
        clock: Callable[[], datetime] = _utcnow,
        on_decrypt: Callable[[str, Mapping[str, Any]], None] | None = None,
    ) -> None:
        self.engine = engine
        self.keys = keys
        self.clock = clock
        # Called with (provider, value) for every decrypted value before it is returned:
        # the engine registers the provider's declared secret fields with its redactor
        # here, for the step that decrypted them, so the values never reach a log.
        self.on_decrypt = on_decrypt

    # -- CredentialProvider ----------------------------------------------------------------

    def check_keys(self) -> tuple[int, list[str]]:
        """Whether this process's master key opens what the vault holds: for each key id in
        use, the data key of one stored credential is unwrapped (never the secret itself).
        Returns (key ids checked, one message per key id that this process can't open)."""
        first: dict[str, Any] = {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.c.key_id, t.c.wrapped_key, t.c.org_slug, t.c.credential_id)
            )
            for row in rows:
                first.setdefault(row.key_id, row)
        failed = []
        for key_id, row in sorted(first.items()):
            try:
                unwrap_data_key(self.keys, key_id, row.wrapped_key)
            except CredentialError as exc:
                failed.append(f"{row.org_slug}/{row.credential_id}: {exc}")
        return len(first), failed

    def info(self, org_slug: str, credential_id: str) -> CredentialInfo | None:
        row = self._row(org_slug, credential_id, (t.c.provider, t.c.enabled))
        if row is None:
            return IMPLICIT_DEFAULT if credential_id == DEFAULT_ID else None
        return CredentialInfo(credential_id, row["provider"], bool(row["enabled"]))

    def exists(self, org_slug: str, credential_id: str) -> bool:
        info = self.info(org_slug, credential_id)
        return info is not None and info.enabled

    def get(self, org_slug: str, credential_id: str) -> Mapping[str, Any]:
        row = self._row(org_slug, credential_id, tuple(t.c))
        if row is None:
            if credential_id == DEFAULT_ID:
                return {}
            raise NotFoundError(f"credential {credential_id!r} not found for org {org_slug!r}")
        if not row["enabled"]:
            raise CredentialError(f"credential {credential_id!r} of org {org_slug!r} is disabled")
        sealed = Sealed(row["key_id"], row["wrapped_key"], row["nonce"], row["ciphertext"])
        secret = open_sealed(self.keys, org_slug, credential_id, row["provider"], sealed)
        if self.on_decrypt is not None:
            self.on_decrypt(row["provider"], secret)
        return secret

    # -- administration (CLI and admin API) -------------------------------------------------

    def add(
        self,
        org_slug: str,
        provider: str,
        name: str,
        secret: str | bytes | Mapping[str, Any],
        credential_id: str | None = None,
    ) -> dict[str, Any]:
        """Encrypt and store a credential; returns its metadata (never the secret)."""
        if PROVIDER_RE.fullmatch(provider or "") is None:
            raise TerminalError("provider must be 1-64 of lower-case letters, digits and _")
        name = (name or "").strip()
        if not name or len(name) > MAX_NAME or not name.isprintable():
            raise TerminalError(f"name must be 1-{MAX_NAME} printable characters")
        credential_id = credential_id or slug_id(name)
        if CREDENTIAL_ID_RE.fullmatch(credential_id) is None:
            raise TerminalError(f"credential id must be {CREDENTIAL_ID_DOC}")
        value = parse_secret(secret)
        if self._row(org_slug, credential_id, (t.c.credential_id,)) is not None:
            raise AlreadyExistsError(
                f"credential {credential_id!r} already exists for org {org_slug!r}"
            )
        sealed = seal(self.keys, org_slug, credential_id, provider, value)
        row = {
            "org_slug": org_slug,
            "credential_id": credential_id,
            "provider": provider,
            "name": name,
            "key_id": sealed.key_id,
            "wrapped_key": sealed.wrapped_key,
            "nonce": sealed.nonce,
            "ciphertext": sealed.ciphertext,
            "enabled": True,
            "created_at": self.clock(),
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(t).values(**row))
        except IntegrityError:
            # Lost a race with an identical add, or the org does not exist (foreign key).
            if self._row(org_slug, credential_id, (t.c.credential_id,)) is not None:
                raise AlreadyExistsError(
                    f"credential {credential_id!r} already exists for org {org_slug!r}"
                ) from None
            raise NotFoundError(f"org {org_slug!r} not found") from None
        return self.describe(org_slug, credential_id)

    def describe(self, org_slug: str, credential_id: str) -> dict[str, Any]:
        row = self._row(org_slug, credential_id, METADATA_COLUMNS)
        if row is None:
            raise NotFoundError(f"credential {credential_id!r} not found for org {org_slug!r}")
        return _meta(row)

    def list(self, org_slug: str | None = None) -> list[dict[str, Any]]:
        query = select(*METADATA_COLUMNS).order_by(t.c.org_slug, t.c.credential_id)
        if org_slug is not None:
            query = query.where(t.c.org_slug == org_slug)
        with self.engine.connect() as conn:
            return [_meta(r) for r in conn.execute(query).mappings().all()]

    def set_enabled(self, org_slug: str, credential_id: str, enabled: bool) -> dict[str, Any]:
        values = {"enabled": enabled, "disabled_at": None if enabled else self.clock()}
        with self.engine.begin() as conn:
            found = conn.execute(
                update(t)
                .where(t.c.org_slug == org_slug, t.c.credential_id == credential_id)
                .values(**values)
            ).rowcount
        if not found:
            raise NotFoundError(f"credential {credential_id!r} not found for org {org_slug!r}")
        return self.describe(org_slug, credential_id)

    def delete(self, org_slug: str, credential_id: str) -> None:
        with self.engine.begin() as conn:
            found = conn.execute(
                delete(t).where(t.c.org_slug == org_slug, t.c.credential_id == credential_id)
            ).rowcount
        if not found:
            raise NotFoundError(f"credential {credential_id!r} not found for org {org_slug!r}")

    def _row(self, org_slug: str, credential_id: str, columns: tuple[Any, ...]) -> Any:
        query = select(*columns).where(t.c.org_slug == org_slug, t.c.credential_id == credential_id)
        with self.engine.connect() as conn:
            return conn.execute(query).mappings().first()
