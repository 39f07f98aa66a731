"""Sealed secrets (webhook secrets, Slack URLs): bound to org and name, rotated with the vault."""

from __future__ import annotations

import base64
import os

import pytest
from sqlalchemy import Engine, select, update

from credentials.errors import DecryptionError
from credentials.keys import EnvKeyProvider, key_id_of
from credentials.models import org_sealed_secrets
from credentials.rotation import key_id_counts, rewrap_all
from credentials.sealed import SealedSecrets

SLACK = "https://hooks.slack.com/services/T1/B1/sealedSlackToken"


def test_a_sealed_value_opens_only_for_its_org_and_name(engine: Engine, master_key: str) -> None:
    secrets = SealedSecrets(engine, EnvKeyProvider(master_key))
    secrets.put("acme", "notify_slack_webhook_url", SLACK)
    assert secrets.get("acme", "notify_slack_webhook_url") == SLACK
    with engine.connect() as conn:
        (ciphertext,) = conn.execute(select(org_sealed_secrets.c.ciphertext)).one()
    assert b"sealedSlackToken" not in bytes(ciphertext)

    # Relabelled as another secret of the org: refused, never opened.
    with engine.begin() as conn:
        conn.execute(update(org_sealed_secrets).values(name="notify_webhook_secret"))
    with pytest.raises(DecryptionError):
        secrets.get("acme", "notify_webhook_secret")
    secrets.put("acme", "notify_webhook_secret", None)
    assert secrets.get("acme", "notify_webhook_secret") is None


def test_rotating_the_master_key_rewraps_sealed_secrets(engine: Engine, master_key: str) -> None:
    SealedSecrets(engine, EnvKeyProvider(master_key)).put(
        "acme", "notify_webhook_secret", "whsec_x1"
    )
    new = base64.b64encode(os.urandom(32)).decode()
    both = EnvKeyProvider(f"{new},{master_key}")
    new_id = key_id_of(base64.b64decode(new))

    report = rewrap_all(engine, both, new_id)

    assert report.done and report.rewrapped == 1
    assert key_id_counts(engine) == {new_id: 1}
    assert SealedSecrets(engine, EnvKeyProvider(new)).get("acme", "notify_webhook_secret") == (
        "whsec_x1"
    )
