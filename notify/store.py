"""Per-org notification settings in the metadata DB (table created by migration 0005).

notify owns this table, on the shared MetaData of pipeline_ops_core, so it stays a leaf;
the engine passes in the SQLAlchemy engine and the vault (`SecretStore`) that keeps the two secrets:
the webhook's signing secret and the Slack webhook URL are sealed there (migration 0006b
moved them out of this table), never stored here in plaintext.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Engine,
    ForeignKey,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    true,
    update,
)
from sqlalchemy.sql.expression import false

from notify.base import NotificationSettings
from pipeline_ops_core.metadata import metadata

notification_settings = Table(
    "org_notification_settings",
    metadata,
    Column("org_slug", String(64), ForeignKey("organizations.org_slug"), primary_key=True),
    Column("on_failure", Boolean, nullable=False, server_default=true()),
    Column("on_success", Boolean, nullable=False, server_default=false()),
    Column("webhook_url", Text, nullable=True),
    Column("email_to", JSON, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


# Names of the sealed secrets in the vault.
WEBHOOK_SECRET, SLACK_URL = "notify_webhook_secret", "notify_slack_webhook_url"


class SecretStore(Protocol):
    """The vault's sealed secrets of an org, by name (credentials.sealed.SealedSecrets)."""

    def get(self, org_slug: str, name: str) -> str | None: ...

    def put(self, org_slug: str, name: str, value: str | None) -> None: ...


def _row(settings: NotificationSettings, now: datetime) -> dict[str, Any]:
    return {
        "on_failure": settings.on_failure,
        "on_success": settings.on_success,
        "webhook_url": settings.webhook_url,
        "email_to": list(settings.email_to),
        "updated_at": now,
    }


class NotificationSettingsStore:
    def __init__(
        self, engine: Engine, secrets: SecretStore, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.engine = engine
        self.secrets = secrets
        self.clock = clock or (lambda: datetime.now(UTC))

    def get(self, org_slug: str) -> NotificationSettings | None:
        query = select(notification_settings).where(notification_settings.c.org_slug == org_slug)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            return None
        return NotificationSettings(
            org_slug=row["org_slug"],
            on_failure=bool(row["on_failure"]),
            on_success=bool(row["on_success"]),
            webhook_url=row["webhook_url"],
            webhook_secret=self.secrets.get(org_slug, WEBHOOK_SECRET),
            slack_webhook_url=self.secrets.get(org_slug, SLACK_URL),
            email_to=tuple(row["email_to"] or ()),
        )

    def put(self, settings: NotificationSettings) -> None:
        """Insert or replace the org's settings; the two secrets go to the vault."""
        self.secrets.put(settings.org_slug, WEBHOOK_SECRET, settings.webhook_secret)
        self.secrets.put(settings.org_slug, SLACK_URL, settings.slack_webhook_url)
        values = _row(settings, self.clock())
        table = notification_settings
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(table).where(table.c.org_slug == settings.org_slug).values(**values)
            ).rowcount
            if not changed:
                conn.execute(insert(table).values(org_slug=settings.org_slug, **values))

    def delete(self, org_slug: str) -> bool:
        table = notification_settings
        self.secrets.put(org_slug, WEBHOOK_SECRET, None)
        self.secrets.put(org_slug, SLACK_URL, None)
        with self.engine.begin() as conn:
            return bool(conn.execute(delete(table).where(table.c.org_slug == org_slug)).rowcount)
