"""The vault as a store: add, list, disable, delete, `default`, and the run-time checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from sqlalchemy import Engine

from credentials.base import IMPLICIT_DEFAULT, CredentialInfo, NoCredentials, check_usable
from credentials.errors import CredentialError
from credentials.keys import EnvKeyProvider
from credentials.vault import VaultCredentialProvider, parse_secret
from pipeline_ops_core.errors import AlreadyExistsError, NotFoundError, TerminalError

SECRET = {"api_key": "sk-store-test-00000000"}
METADATA = {
    "org_slug",
    "credential_id",
    "provider",
    "name",
    "key_id",
    "enabled",
    "created_at",
    "rotated_at",
    "disabled_at",
}


def test_add_returns_metadata_only(vault: VaultCredentialProvider) -> None:
    meta = vault.add("acme", "openai", "Prod OpenAI", SECRET)

    assert set(meta) == METADATA
    assert meta["credential_id"] == "prod_openai"  # derived from the name
    assert (meta["provider"], meta["enabled"], meta["disabled_at"]) == ("openai", True, None)
    assert meta["created_at"].tzinfo is not None
    assert "sk-store" not in repr(meta)


def test_list_is_metadata_only_and_per_org(vault: VaultCredentialProvider) -> None:
    vault.add("acme", "openai", "A", SECRET, "a")
    vault.add("globex", "anthropic", "B", SECRET, "b")

    everything = vault.list()
    assert [(m["org_slug"], m["credential_id"]) for m in everything] == [
        ("acme", "a"),
        ("globex", "b"),
    ]
    assert all(set(m) == METADATA for m in everything)
    assert [m["credential_id"] for m in vault.list("globex")] == ["b"]
    assert "sk-store" not in repr(everything)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            '{"api_key": "k-123456", "base_url": "http://x"}',
            {"api_key": "k-123456", "base_url": "http://x"},
        ),
        ("plain-token-value\n", {"api_key": "plain-token-value"}),
        ('"quoted-token"', {"api_key": "quoted-token"}),
        ("12345678", {"api_key": "12345678"}),
        (b'{"a": 1}', {"a": 1}),
        ({"k": "v"}, {"k": "v"}),
    ],
)
def test_secrets_are_json_objects_or_raw_strings(raw: Any, expected: dict[str, Any]) -> None:
    assert parse_secret(raw) == expected


@pytest.mark.parametrize("raw", ["", "   \n", "{}", {}])
def test_empty_secrets_are_refused(raw: Any) -> None:
    with pytest.raises(TerminalError, match="secret"):
        parse_secret(raw)


def test_an_oversized_secret_is_refused() -> None:
    with pytest.raises(TerminalError, match="larger than 64 KiB"):
        parse_secret({"blob": "x" * 70_000})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"provider": "Open AI"}, "provider must be"),
        ({"provider": "openai'; DROP TABLE org_credentials; --"}, "provider must be"),
        ({"name": ""}, "name must be"),
        ({"name": "x" * 201}, "name must be"),
        ({"name": "tab\there"}, "name must be"),
        ({"credential_id": "Bad Id"}, "credential id must be"),
        ({"credential_id": "../x"}, "credential id must be"),
        ({"name": "!!!", "credential_id": None}, "credential id must be"),
    ],
)
def test_bad_metadata_is_refused_and_nothing_is_stored(
    vault: VaultCredentialProvider, kwargs: dict[str, Any], message: str
) -> None:
    args = {"provider": "openai", "name": "Prod", "credential_id": "prod", **kwargs}
    with pytest.raises(TerminalError, match=message):
        vault.add("acme", args["provider"], args["name"], SECRET, args["credential_id"])
    assert vault.list() == []


def test_a_duplicate_id_is_refused_and_the_original_kept(vault: VaultCredentialProvider) -> None:
    vault.add("acme", "openai", "Prod", SECRET, "prod")
    with pytest.raises(AlreadyExistsError, match="'prod' already exists for org 'acme'"):
        vault.add("acme", "openai", "Other", {"api_key": "different-000"}, "prod")
    assert vault.get("acme", "prod") == SECRET
    vault.add("globex", "openai", "Same id, other org", SECRET, "prod")  # ids are per org


def test_an_unknown_org_is_refused_by_the_foreign_key(vault: VaultCredentialProvider) -> None:
    with pytest.raises(NotFoundError, match="org 'initech' not found"):
        vault.add("initech", "openai", "Prod", SECRET, "prod")


def test_disable_enable_and_delete(vault: VaultCredentialProvider) -> None:
    vault.add("acme", "openai", "Prod", SECRET, "prod")

    disabled = vault.set_enabled("acme", "prod", False)
    assert disabled["enabled"] is False and disabled["disabled_at"] is not None
    assert vault.exists("acme", "prod") is False
    with pytest.raises(CredentialError, match="disabled"):
        vault.get("acme", "prod")

    enabled = vault.set_enabled("acme", "prod", True)
    assert enabled["enabled"] is True and enabled["disabled_at"] is None
    assert vault.get("acme", "prod") == SECRET

    vault.delete("acme", "prod")
    assert vault.info("acme", "prod") is None
    for call in (
        lambda: vault.delete("acme", "prod"),
        lambda: vault.set_enabled("acme", "prod", False),
        lambda: vault.get("acme", "prod"),
    ):
        with pytest.raises(NotFoundError, match="'prod' not found for org 'acme'"):
            call()


def test_default_means_no_secret_until_one_is_stored(vault: VaultCredentialProvider) -> None:
    assert vault.info("acme", "default") == IMPLICIT_DEFAULT
    assert vault.exists("acme", "default")
    assert vault.get("acme", "default") == {}

    vault.add("acme", "openai", "Default", SECRET, "default")

    assert vault.info("acme", "default") == CredentialInfo("default", "openai", True)
    assert vault.get("acme", "default") == SECRET
    assert vault.get("globex", "default") == {}  # another org is unaffected


def test_every_decrypted_value_is_handed_to_on_decrypt(engine: Engine, master_key: str) -> None:
    seen: list[Mapping[str, Any]] = []
    vault = VaultCredentialProvider(
        engine, EnvKeyProvider(master_key), on_decrypt=lambda provider, value: seen.append(value)
    )
    vault.add("acme", "openai", "Prod", SECRET, "prod")
    assert seen == []  # storing decrypts nothing
    vault.get("acme", "prod")
    assert seen == [SECRET]


def test_registering_decrypted_values_masks_the_declared_secrets_for_the_step_only(
    engine: Engine, master_key: str
) -> None:
    from pipeline.observability.redact import MASK, redact, register_decrypted, secret_scope

    pem = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END KEY-----"
    secret = {
        "type": "service_account",
        "client_email": "reader@proj.iam.gserviceaccount.com",
        "private_key": pem,
        "catalog_api_key": "zz-unpatterned-7d1e9f",
        "billing_table": "proj.billing.gcp_billing_export_v1_0A1B2C",
    }
    vault = VaultCredentialProvider(
        engine, EnvKeyProvider(master_key), on_decrypt=register_decrypted
    )
    vault.add("acme", "gcp", "SA", secret, "sa")
    text = (
        "got zz-unpatterned-7d1e9f and MIIEvQIBADANBgkqhkiG9w0BAQEFAASC "
        "reading proj.billing.gcp_billing_export_v1_0A1B2C"
    )
    with secret_scope():
        vault.get("acme", "sa")
        assert redact(text) == (
            f"got {MASK} and {MASK} reading proj.billing.gcp_billing_export_v1_0A1B2C"
        )
    assert redact(text) == text  # the step ended: its secrets are forgotten


# -- check_usable: what the run service asks before recording a run ---------------------


def test_check_usable_accepts_a_stored_credential_of_the_same_provider(
    vault: VaultCredentialProvider,
) -> None:
    vault.add("acme", "openai", "Prod", SECRET, "prod")
    info = check_usable(vault, "acme", "prod", "openai", "genai_openai_payg")
    assert info.provider == "openai"


def test_check_usable_accepts_the_implicit_default_for_any_provider(
    vault: VaultCredentialProvider,
) -> None:
    assert check_usable(vault, "acme", "default", "demo", "demo_pipe") == IMPLICIT_DEFAULT
    assert check_usable(NoCredentials(), "acme", "default", "x", "p") == IMPLICIT_DEFAULT


@pytest.mark.parametrize(
    ("org", "cred", "message"),
    [
        ("acme", "missing", "credential 'missing' not found for org 'acme'"),
        ("globex", "prod", "credential 'prod' not found for org 'globex'"),  # another org's
        ("acme", "anthropic_key", "is for provider 'anthropic', but pipeline p needs a 'openai'"),
        ("acme", "off", "credential 'off' of org 'acme' is disabled"),
        ("acme", "Bad Cred", "invalid credential id"),
        ("acme", "x'; DROP TABLE org_credentials; --", "invalid credential id"),
    ],
)
def test_check_usable_refuses_with_a_clear_422_message(
    vault: VaultCredentialProvider, org: str, cred: str, message: str
) -> None:
    vault.add("acme", "openai", "Prod", SECRET, "prod")
    vault.add("acme", "anthropic", "Claude", SECRET, "anthropic_key")
    vault.add("acme", "openai", "Off", SECRET, "off")
    vault.set_enabled("acme", "off", False)

    with pytest.raises(CredentialError) as info:
        check_usable(vault, org, cred, "openai", "p")

    assert message in str(info.value)
    assert info.value.code == "invalid_credential"
