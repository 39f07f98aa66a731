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

from sqlalchemy import Engine, Table, and_, func, or_, select, update

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


def rewrap_all(
    engine: Engine,
    keys: KeyProvider,
    new_key_id: str,
    *,
    progress: Callable[[int], None] | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    batch: int = BATCH,
) -> RotationReport:
    """Re-wrap every row not yet on `new_key_id`; `keys` must hold the old ids and the new.

    The credentials, then the sealed secrets (webhook secrets, Slack URLs).
    """
    report = RotationReport(new_key_id, already_current=key_id_counts(engine).get(new_key_id, 0))
    for table, name, stamp in (
        (t, "credential_id", "rotated_at"),
        (sealed_t, "name", "updated_at"),
    ):
        _rewrap_table(engine, keys, report, table, name, stamp, progress, clock, batch)
    return report


def _rewrap_table(
    engine: Engine,
    keys: KeyProvider,
    report: RotationReport,
    table: Table,
    name: str,
    stamp: str,
    progress: Callable[[int], None] | None,
    clock: Callable[[], datetime],
    batch: int,
) -> None:
    new_key_id, c = report.new_key_id, table.c
    after: tuple[str, str] = ("", "")
    while True:
        query = (
            select(c.org_slug, c[name], c.key_id, c.wrapped_key)
            .where(c.key_id != new_key_id)
            .where(or_(c.org_slug > after[0], and_(c.org_slug == after[0], c[name] > after[1])))
            .order_by(c.org_slug, c[name])
            .limit(batch)
        )
        with engine.connect() as conn:
            rows = conn.execute(query).all()
        if not rows:
            return
        for org, row_id, key_id, wrapped in rows:
            after = (org, row_id)
            try:
                new_id, new_wrapped = rewrap(keys, key_id, wrapped, new_key_id)
            except DecryptionError as exc:
                report.failed.append((org, row_id, str(exc)))
                continue
            with engine.begin() as conn:
                moved = conn.execute(
                    update(table)
                    .where(c.org_slug == org, c[name] == row_id, c.key_id == key_id)
                    .values({"key_id": new_id, "wrapped_key": new_wrapped, stamp: clock()})
                ).rowcount
            if moved:
                report.rewrapped += 1
                if progress is not None:
                    progress(report.rewrapped)


def key_file_of(keys: KeyProvider) -> FileKeyProvider | None:
    """The key file behind `keys` when the master key is the embedded default (under
    PIPELINE_OPS_VAR_DIR), or None when it comes from PIPELINE_OPS_MASTER_KEY."""
    if isinstance(keys, LazyKeys):
        keys = keys.get()
    return keys if isinstance(keys, FileKeyProvider) else None


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
