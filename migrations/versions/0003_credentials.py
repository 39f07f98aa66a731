"""credential vault, and org API key rotation/revocation

Revision ID: 0003_credentials
Revises: 0001
Create Date: 2026-11-25 23:10:00

Written by hand. org_credentials is defined in credentials/models.py (its own
MetaData); the organizations columns in pipeline/storage/tables.py. Branches off 0001 in
parallel with 0002_quota; `upgrade heads` applies both.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_credentials"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "org_credentials",
        sa.Column("org_slug", sa.String(length=64), nullable=False),
        sa.Column("credential_id", sa.String(length=128), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("nonce", sa.LargeBinary(), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_slug"], ["organizations.org_slug"], name="fk_org_credentials_org"
        ),
        sa.PrimaryKeyConstraint("org_slug", "credential_id", name="pk_org_credentials"),
    )
    op.create_index("ix_org_credentials_key_id", "org_credentials", ["key_id"])

    # Key rotation keeps the previous key valid for an overlap window; revocation
    # is recorded when it happened.
    with op.batch_alter_table("organizations") as batch:
        batch.add_column(sa.Column("previous_key_prefix", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("previous_key_hash", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column("previous_key_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("key_rotated_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("key_revoked_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ux_org_previous_key_prefix", ["previous_key_prefix"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("organizations") as batch:
        batch.drop_index("ux_org_previous_key_prefix")
        batch.drop_column("key_revoked_at")
        batch.drop_column("key_rotated_at")
        batch.drop_column("previous_key_expires_at")
        batch.drop_column("previous_key_hash")
        batch.drop_column("previous_key_prefix")
    op.drop_index("ix_org_credentials_key_id", table_name="org_credentials")
    op.drop_table("org_credentials")
