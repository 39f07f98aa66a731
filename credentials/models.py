"""The vault's tables, on the shared MetaData (pipeline_ops_core/metadata.py).

Migrations 0003_credentials and 0006b_engine_safeguards create them.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Table,
    true,
)

from pipeline_ops_core.metadata import metadata

org_credentials = Table(
    "org_credentials",
    metadata,
    Column(
        "org_slug",
        String(64),
        ForeignKey("organizations.org_slug", name="fk_org_credentials_org"),
        primary_key=True,
    ),
    Column("credential_id", String(128), primary_key=True),
    Column("provider", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    # Master key id the data key is wrapped under; rotation rewrites key_id and
    # wrapped_key only.
    Column("key_id", String(64), nullable=False),
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("nonce", LargeBinary, nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("enabled", Boolean, nullable=False, server_default=true()),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("rotated_at", DateTime(timezone=True), nullable=True),
    Column("disabled_at", DateTime(timezone=True), nullable=True),
    Index("ix_org_credentials_key_id", "key_id"),
)

# Secrets that are not provider credentials (a webhook's signing secret, a Slack
# incoming-webhook URL), sealed like credentials and re-wrapped by the same rotation.
# Created by migration 0006b_engine_safeguards.
org_sealed_secrets = Table(
    "org_sealed_secrets",
    metadata,
    Column("org_slug", String(64), ForeignKey("organizations.org_slug"), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("key_id", String(64), nullable=False),
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("nonce", LargeBinary, nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_org_sealed_secrets_key_id", "key_id"),
)
