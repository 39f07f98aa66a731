"""Per-org notification settings in the metadata DB (table created by migration 0005).

notify owns this table on its own MetaData, so it stays a leaf; the engine passes
in the SQLAlchemy engine.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Engine,
    MetaData,
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

metadata = MetaData()

notification_settings = Table(
    "org_notification_settings",
    metadata,
    Column("org_slug", String(64), primary_key=True),
    Column("on_failure", Boolean, nullable=False, server_default=true()),
    Column("on_success", Boolean, nullable=False, server_default=false()),
    Column("webhook_url", Text, nullable=True),
    # The HMAC key for X-Signature; shared with the receiver, so it is stored to sign.
    Column("webhook_secret", String(128), nullable=True),
    Column("slack_webhook_url", Text, nullable=True),
    Column("email_to", JSON, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


def _row(settings: NotificationSettings, now: datetime) -> dict[str, Any]:
    return {
        "on_failure": settings.on_failure,
        "on_success": settings.on_success,
        "webhook_url": settings.webhook_url,
        "webhook_secret": settings.webhook_secret,
        "slack_webhook_url": settings.slack_webhook_url,
        "email_to": list(settings.email_to),
        "updated_at": now,
    }


class NotificationSettingsStore:
    def __init__(self, engine: Engine, clock: Callable[[], datetime] | None = None) -> None:
        self.engine = engine
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
            webhook_secret=row["webhook_secret"],
            slack_webhook_url=row["slack_webhook_url"],
            email_to=tuple(row["email_to"] or ()),
        )

    def put(self, settings: NotificationSettings) -> None:
        """Insert or replace the org's settings."""
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
        with self.engine.begin() as conn:
            return bool(conn.execute(delete(table).where(table.c.org_slug == org_slug)).rowcount)
