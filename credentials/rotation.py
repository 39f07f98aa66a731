"""Master-key rotation: re-wrap every data key under a new master key.

Only the wrapped data key changes (32 bytes per row); ciphertexts stay as they
are. Each row is re-wrapped in its own transaction, conditional on the key id it
was read with, so the job can be killed at any point and run again: rows already
on the new key id are skipped, and until a row is re-wrapped its old key id still
decrypts (the rotating key provider holds old and new keys).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine, and_, func, or_, select, update

from credentials.crypto import rewrap
from credentials.errors import DecryptionError
from credentials.keys import FileKeyProvider, KeyProvider, LazyKeys, LocalKeyring, key_id_of
from credentials.models import org_credentials as t
from credentials.models import org_sealed_secrets as sealed_t

BATCH = 200


@dataclass
class RotationReport:
    new_key_id: str
    rewrapped: int = 0
    already_current: int = 0
    # (org_slug, credential_id, why) for rows that could not be unwrapped; never secrets.
    failed: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return not self.failed


def key_id_counts(engine: Engine) -> dict[str, int]:
    """How many credentials and sealed secrets each master key id wraps."""
    counts: dict[str, int] = {}
    with engine.connect() as conn:
        for table in (t, sealed_t):
            query = select(table.c.key_id, func.count()).group_by(table.c.key_id)
            for kid, n in conn.execute(query).all():
                counts[kid] = counts.get(kid, 0) + int(n)
    return counts


def _rewrap_sealed(
    engine: Engine,
    keys: KeyProvider,
    new_key_id: str,
    report: RotationReport,
    clock: Callable[[], datetime],
) -> None:
    """The sealed secrets (webhook secrets, Slack URLs): few rows, one transaction each."""
    query = select(sealed_t.c.org_slug, sealed_t.c.name, sealed_t.c.key_id, sealed_t.c.wrapped_key)
    with engine.connect() as conn:
        rows = conn.execute(query.where(sealed_t.c.key_id != new_key_id)).all()
    for org, name, key_id, wrapped in rows:
        try:
            new_id, new_wrapped = rewrap(keys, key_id, wrapped, new_key_id)
        except DecryptionError as exc:
            report.failed.append((org, name, str(exc)))
            continue
        with engine.begin() as conn:
            moved = conn.execute(
                update(sealed_t)
                .where(
                    sealed_t.c.org_slug == org,
                    sealed_t.c.name == name,
                    sealed_t.c.key_id == key_id,
                )
                .values(key_id=new_id, wrapped_key=new_wrapped, updated_at=clock())
            ).rowcount
        report.rewrapped += moved


def rewrap_all(
    engine: Engine,
    keys: KeyProvider,
    new_key_id: str,
    *,
    progress: Callable[[int], None] | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    batch: int = BATCH,
) -> RotationReport:
    """Re-wrap every row not yet on `new_key_id`; `keys` must hold the old ids and the new."""
    report = RotationReport(new_key_id, already_current=key_id_counts(engine).get(new_key_id, 0))
    after: tuple[str, str] = ("", "")
    while True:
        query = (
            select(t.c.org_slug, t.c.credential_id, t.c.key_id, t.c.wrapped_key)
            .where(t.c.key_id != new_key_id)
            .where(
                or_(
                    t.c.org_slug > after[0],
                    and_(t.c.org_slug == after[0], t.c.credential_id > after[1]),
                )
            )
            .order_by(t.c.org_slug, t.c.credential_id)
            .limit(batch)
        )
        with engine.connect() as conn:
            rows = conn.execute(query).all()
        if not rows:
            _rewrap_sealed(engine, keys, new_key_id, report, clock)
            return report
        for org, cred, key_id, wrapped in rows:
            after = (org, cred)
            try:
                new_id, new_wrapped = rewrap(keys, key_id, wrapped, new_key_id)
            except DecryptionError as exc:
                report.failed.append((org, cred, str(exc)))
                continue
            with engine.begin() as conn:
                moved = conn.execute(
                    update(t)
                    .where(t.c.org_slug == org, t.c.credential_id == cred, t.c.key_id == key_id)
                    .values(key_id=new_id, wrapped_key=new_wrapped, rotated_at=clock())
                ).rowcount
            if moved:
                report.rewrapped += 1
                if progress is not None:
                    progress(report.rewrapped)


def rotating_keys(current: KeyProvider, new_key: bytes) -> tuple[KeyProvider, str]:
    """A provider that opens everything `current` can and also holds `new_key`.

    For the key file (embedded default) the new key is installed first: the old key
    moves to the keyring file, so every process keeps opening rows not yet re-wrapped.
    """
    new_id = key_id_of(new_key)
    if isinstance(current, LazyKeys):
        current = current.get()
    if isinstance(current, FileKeyProvider):
        current.install(new_key)
        return current, new_id
    if isinstance(current, LocalKeyring):
        return LocalKeyring([new_key, *current.material()]), new_id
    raise TypeError(
        f"{type(current).__name__} manages its own keys (e.g. a KMS): rotate there, then "
        "run rewrap_all with its new key id"
    )
