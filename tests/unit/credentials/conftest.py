"""Fixtures for the vault tests: a migrated SQLite metadata DB with two orgs, and keys.

No `__init__.py` here on purpose: it would make this folder a package named
`credentials` and shadow the real one. Helpers are fixtures for the same reason.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:  # so plain `pytest` finds the packages without an install
    sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, insert, select, update  # noqa: E402

from credentials.keys import EnvKeyProvider, generate_key  # noqa: E402
from credentials.models import org_credentials  # noqa: E402
from credentials.vault import VaultCredentialProvider  # noqa: E402
from pipeline.storage.db import make_engine, upgrade  # noqa: E402
from pipeline.storage.tables import organizations  # noqa: E402


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        for slug, prefix in (("acme", "aaaaaaaaaaaa"), ("globex", "bbbbbbbbbbbb")):
            conn.execute(
                insert(organizations).values(
                    org_slug=slug,
                    name=slug,
                    api_key_prefix=prefix,
                    api_key_hash="0" * 64,
                    created_at=datetime.now(UTC),
                )
            )
    engine.dispose()
    return url


@pytest.fixture
def engine(db_url: str) -> Engine:
    return make_engine(db_url)


@pytest.fixture
def master_key() -> str:
    return generate_key()


@pytest.fixture
def vault(engine: Engine, master_key: str) -> VaultCredentialProvider:
    return VaultCredentialProvider(engine, EnvKeyProvider(master_key))


@pytest.fixture
def row() -> Callable[[Engine, str, str], dict[str, Any]]:
    """row(engine, org, credential_id): the stored row, sealed columns included."""

    def _row(engine: Engine, org: str, cred: str) -> dict[str, Any]:
        query = select(org_credentials).where(
            org_credentials.c.org_slug == org, org_credentials.c.credential_id == cred
        )
        with engine.connect() as conn:
            return dict(conn.execute(query).mappings().one())

    return _row


@pytest.fixture
def set_row() -> Callable[..., None]:
    """set_row(engine, org, credential_id, **columns): overwrite stored columns (tampering)."""

    def _set(engine: Engine, org: str, cred: str, **values: Any) -> None:
        with engine.begin() as conn:
            conn.execute(
                update(org_credentials)
                .where(org_credentials.c.org_slug == org, org_credentials.c.credential_id == cred)
                .values(**values)
            )

    return _set
