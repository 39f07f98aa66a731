"""Webhook secrets and Slack URLs live sealed in the vault, migrated from plaintext rows.

On SQLite and a real PostgreSQL: a metadata DB at the schema before 0006b holds an org's
notification settings in plaintext; the upgrade seals both secrets into
org_sealed_secrets with the master key and drops the plaintext columns. The values
decrypt for sending, appear nowhere in the database in the clear, and the settings the
API and CLI show never carry them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text

from app.admin.presenters import present_notifications
from credentials.models import org_sealed_secrets
from pipeline.bootstrap import build_services
from pipeline.settings import Settings
from pipeline.storage.db import make_engine, upgrade
from tests.support.doubles import NullDispatcher
from tests.support.servers import Server, create_pg_database

WEBHOOK_SECRET = "whsec_plaintext-before-0006b-7f3a9c"
SLACK_URL = "https://hooks.slack.com/services/T000/B000/plaintextSlackToken42"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.db'}"
    server: Server = request.getfixturevalue("postgres_server")
    return create_pg_database(server, f"notify_{uuid.uuid4().hex[:10]}")


def test_plaintext_notification_secrets_are_sealed_by_the_migration(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_OPS_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("PIPELINE_OPS_MASTER_KEY", raising=False)
    upgrade(db_url, "0005_schedules")
    engine = make_engine(db_url)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO organizations (org_slug, name, api_key_prefix, api_key_hash,"
                " created_at) VALUES ('acme', 'Acme', 'aaaaaaaaaaaa', :h, :now)"
            ),
            {"h": "0" * 64, "now": now},
        )
        conn.execute(
            text(
                "INSERT INTO org_notification_settings (org_slug, on_failure, on_success,"
                " webhook_url, webhook_secret, slack_webhook_url, email_to, updated_at)"
                " VALUES ('acme', true, false, 'https://hooks.example.com/x', :s, :u, '[]', :now)"
            ),
            {"s": WEBHOOK_SECRET, "u": SLACK_URL, "now": now},
        )

    upgrade(db_url)

    columns = {c["name"] for c in inspect(engine).get_columns("org_notification_settings")}
    assert "webhook_secret" not in columns and "slack_webhook_url" not in columns
    with engine.connect() as conn:
        sealed = conn.execute(select(org_sealed_secrets)).mappings().all()
    assert sorted(row["name"] for row in sealed) == [
        "notify_slack_webhook_url",
        "notify_webhook_secret",
    ]
    # Nothing in the database holds either value in the clear.
    with engine.connect() as conn:
        for table in inspect(engine).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')).all():
                dumped = " ".join(
                    v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in row
                )
                assert WEBHOOK_SECRET not in dumped and "plaintextSlackToken42" not in dumped

    settings = Settings.from_env({"DATABASE_URL": db_url, "PIPELINE_OPS_VAR_DIR": str(tmp_path)})
    services = build_services(settings, NullDispatcher())
    assert services.notifications is not None
    opened = services.notifications.get_settings("acme")
    assert (opened.webhook_secret, opened.slack_webhook_url) == (WEBHOOK_SECRET, SLACK_URL)
    shown = str(present_notifications(opened))
    assert WEBHOOK_SECRET not in shown and "plaintextSlackToken42" not in shown

    # A change keeps them sealed; removing the Slack URL removes its sealed row.
    from dataclasses import replace

    services.notifications.set_settings(replace(opened, slack_webhook_url=None))
    with engine.connect() as conn:
        names = [r[0] for r in conn.execute(select(org_sealed_secrets.c.name)).all()]
    assert names == ["notify_webhook_secret"]
    assert services.notifications.get_settings("acme").webhook_secret == WEBHOOK_SECRET
