"""engine safeguards: lost-worker count, the cancelling status, sealed notification secrets

Revision ID: 0006b_engine_safeguards
Revises: 0005_schedules
Create Date: 2026-12-03 16:00:00

Written by hand.
- org_meta_step_logs.lost_workers: how many processes died running an attempt; the step
  fails at PIPELINE_OPS_MAX_LOST_WORKERS instead of being redelivered forever.
- ux_runs_active_idempotency also covers `cancelling`: a run being cancelled keeps its
  idempotency key until its executing step has stopped.
- org_sealed_secrets: webhook signing secrets and Slack webhook URLs, sealed with the
  credential vault's envelope encryption. The plaintext columns of
  org_notification_settings are read, sealed into it with the master key
  (PIPELINE_OPS_MASTER_KEY or the key file, as every process finds it), and dropped.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0006b_engine_safeguards"
down_revision = "0005_schedules"
branch_labels = None
depends_on = None

_OLD_ACTIVE = "status IN ('pending', 'validating', 'queued', 'running')"
_NEW_ACTIVE = "status IN ('pending', 'validating', 'queued', 'running', 'cancelling')"


def _active_index(where: str) -> None:
    with op.batch_alter_table("org_meta_pipeline_runs", schema=None) as batch_op:
        batch_op.drop_index("ux_runs_active_idempotency")
        batch_op.create_index(
            "ux_runs_active_idempotency",
            ["idempotency_key"],
            unique=True,
            sqlite_where=sa.text(where),
            postgresql_where=sa.text(where),
        )


# (plaintext column of org_notification_settings, name in org_sealed_secrets)
_SECRETS = (
    ("webhook_secret", "notify_webhook_secret"),
    ("slack_webhook_url", "notify_slack_webhook_url"),
)


def _keys():  # type: ignore[no-untyped-def]
    # The same master key every process uses; only built when there is something to seal.
    from credentials.keys import key_provider
    from pipeline.settings import Settings

    settings = Settings.from_env()
    return key_provider(settings.master_key, settings.var_dir)


def upgrade() -> None:
    with op.batch_alter_table("org_meta_step_logs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("lost_workers", sa.Integer(), server_default="0", nullable=False)
        )
    _active_index(_NEW_ACTIVE)

    op.create_table(
        "org_sealed_secrets",
        sa.Column("org_slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("nonce", sa.LargeBinary(), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_slug"], ["organizations.org_slug"]),
        sa.PrimaryKeyConstraint("org_slug", "name"),
    )
    op.create_index("ix_org_sealed_secrets_key_id", "org_sealed_secrets", ["key_id"])

    from credentials.sealed import put_sealed

    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            "SELECT org_slug, webhook_secret, slack_webhook_url FROM org_notification_settings"
            " WHERE webhook_secret IS NOT NULL OR slack_webhook_url IS NOT NULL"
        )
    ).all()
    if rows:
        keys, now = _keys(), datetime.now(UTC)
        for org_slug, *values in rows:
            for (_, name), value in zip(_SECRETS, values, strict=True):
                if value:
                    put_sealed(conn, keys, org_slug, name, value, now)
    with op.batch_alter_table("org_notification_settings", schema=None) as batch_op:
        batch_op.drop_column("webhook_secret")
        batch_op.drop_column("slack_webhook_url")


def downgrade() -> None:
    from credentials.crypto import Sealed
    from credentials.sealed import open_value

    with op.batch_alter_table("org_notification_settings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("webhook_secret", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("slack_webhook_url", sa.Text(), nullable=True))
    conn = op.get_bind()
    sealed = conn.execute(
        sa.text(
            "SELECT org_slug, name, key_id, wrapped_key, nonce, ciphertext FROM org_sealed_secrets"
        )
    ).all()
    columns = {name: column for column, name in _SECRETS}
    keys = _keys() if sealed else None
    for org_slug, name, *parts in sealed:
        if name not in columns:
            continue
        value = open_value(keys, org_slug, name, Sealed(*parts))
        conn.execute(
            sa.text(
                f"UPDATE org_notification_settings SET {columns[name]} = :v WHERE org_slug = :o"
            ),
            {"v": value, "o": org_slug},
        )
    op.drop_index("ix_org_sealed_secrets_key_id", table_name="org_sealed_secrets")
    op.drop_table("org_sealed_secrets")

    # A run left cancelling would hold no key under the old index; end it first.
    op.execute(
        "UPDATE org_meta_pipeline_runs SET status = 'cancelled' WHERE status = 'cancelling'"
    )
    _active_index(_OLD_ACTIVE)
    with op.batch_alter_table("org_meta_step_logs", schema=None) as batch_op:
        batch_op.drop_column("lost_workers")
