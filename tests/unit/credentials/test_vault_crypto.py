"""Envelope encryption: round trip, and every kind of tampering fails closed and clearly.

Each failure must name what went wrong (org, credential, key id) and never carry
the plaintext or any part of it.
"""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import Engine

from credentials.crypto import Sealed, open_sealed, seal, secret_aad
from credentials.errors import DecryptionError, KeyUnavailableError, UnwrapError
from credentials.keys import EnvKeyProvider, LocalKeyring, generate_key, key_id_of
from credentials.vault import VaultCredentialProvider

SECRET = {"api_key": "sk-canary-0123456789abcdef", "org_id": "org-42"}
PLAINTEXT_PARTS = ("sk-canary", "0123456789abcdef", "org-42")


def assert_no_plaintext(exc: BaseException) -> None:
    text = f"{exc!s} {exc!r}"
    for part in PLAINTEXT_PARTS:
        assert part not in text


def flip(data: bytes, index: int = 0) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def test_round_trip(vault: VaultCredentialProvider) -> None:
    vault.add("acme", "openai", "Prod", SECRET, "prod")
    assert vault.get("acme", "prod") == SECRET


def test_each_credential_gets_its_own_data_key_and_nonce(
    vault: VaultCredentialProvider, engine: Engine, row
) -> None:
    vault.add("acme", "openai", "A", SECRET, "a")
    vault.add("acme", "openai", "B", SECRET, "b")
    a, b = row(engine, "acme", "a"), row(engine, "acme", "b")
    assert a["wrapped_key"] != b["wrapped_key"]
    assert a["nonce"] != b["nonce"]
    assert a["ciphertext"] != b["ciphertext"]
    assert len(a["nonce"]) == 12
    assert a["key_id"] == b["key_id"] == vault.keys.current_key_id()


def test_the_row_holds_no_plaintext(vault: VaultCredentialProvider, engine: Engine, row) -> None:
    vault.add("acme", "openai", "Prod", SECRET, "prod")
    stored = row(engine, "acme", "prod")
    blob = b"".join(v if isinstance(v, bytes) else str(v).encode() for v in stored.values())
    for part in PLAINTEXT_PARTS:
        assert part.encode() not in blob
        assert base64.b64encode(part.encode()) not in blob


@pytest.mark.parametrize(
    ("column", "index"),
    [
        ("ciphertext", 0),  # the encrypted body
        ("ciphertext", -1),  # the GCM tag (the last 16 bytes)
        ("nonce", 0),
    ],
)
def test_tampered_ciphertext_tag_or_nonce_fails_clearly(
    vault: VaultCredentialProvider, engine: Engine, row, set_row, column: str, index: int
) -> None:
    vault.add("acme", "openai", "Prod", SECRET, "prod")
    value = row(engine, "acme", "prod")[column]
    set_row(engine, "acme", "prod", **{column: flip(value, index % len(value))})

    with pytest.raises(DecryptionError, match="does not belong to org acme / credential prod"):
        vault.get("acme", "prod")


def test_a_truncated_ciphertext_fails_clearly(
    vault: VaultCredentialProvider, engine: Engine, row, set_row
) -> None:
    vault.add("acme", "openai", "Prod", SECRET, "prod")
    set_row(engine, "acme", "prod", ciphertext=row(engine, "acme", "prod")["ciphertext"][:10])
    with pytest.raises(DecryptionError) as info:
        vault.get("acme", "prod")
    assert_no_plaintext(info.value)


@pytest.mark.parametrize("index", [0, 12, -1])  # the wrap nonce, the wrapped key, its tag
def test_a_tampered_wrapped_key_fails_clearly(
    vault: VaultCredentialProvider, engine: Engine, row, set_row, index: int
) -> None:
    vault.add("acme", "openai", "Prod", SECRET, "prod")
    wrapped = row(engine, "acme", "prod")["wrapped_key"]
    set_row(engine, "acme", "prod", wrapped_key=flip(wrapped, index % len(wrapped)))

    with pytest.raises(UnwrapError, match="does not unwrap under master key id") as info:
        vault.get("acme", "prod")
    assert_no_plaintext(info.value)


def test_a_wrong_master_key_names_the_missing_key_id(
    vault: VaultCredentialProvider, engine: Engine
) -> None:
    vault.add("acme", "openai", "Prod", SECRET, "prod")
    sealed_under = vault.keys.current_key_id()
    other = VaultCredentialProvider(engine, EnvKeyProvider(generate_key()))

    with pytest.raises(KeyUnavailableError) as info:
        other.get("acme", "prod")

    message = str(info.value)
    assert f"master key id {sealed_under} is not available" in message
    assert other.keys.current_key_id() in message  # what this process does hold
    assert_no_plaintext(info.value)


def test_a_wrong_key_behind_the_right_id_fails_to_unwrap(engine: Engine) -> None:
    # A KMS-style provider keeps ids stable across keys; a wrong key there must still fail.
    right, wrong = base64.b64decode(generate_key()), base64.b64decode(generate_key())
    sealed = seal(LocalKeyring([right]), "acme", "prod", "openai", SECRET)

    class SameIdWrongKey(LocalKeyring):
        def _key(self, key_id: str) -> bytes:
            return wrong

    with pytest.raises(UnwrapError) as info:
        open_sealed(SameIdWrongKey([wrong]), "acme", "prod", "openai", sealed)
    assert_no_plaintext(info.value)


@pytest.mark.parametrize(
    ("to_org", "to_cred"),
    [("globex", "prod"), ("acme", "other"), ("globex", "other")],
)
def test_a_ciphertext_copied_to_another_row_does_not_decrypt(
    vault: VaultCredentialProvider, engine: Engine, row, set_row, to_org: str, to_cred: str
) -> None:
    vault.add("acme", "openai", "Prod", SECRET, "prod")
    vault.add(to_org, "openai", "Victim", {"api_key": "theirs-000000"}, to_cred)
    source = row(engine, "acme", "prod")
    sealed = {c: source[c] for c in ("key_id", "wrapped_key", "nonce", "ciphertext")}
    set_row(engine, to_org, to_cred, **sealed)

    with pytest.raises(DecryptionError) as info:
        vault.get(to_org, to_cred)

    assert f"does not belong to org {to_org} / credential {to_cred}" in str(info.value)
    assert_no_plaintext(info.value)
    assert vault.get("acme", "prod") == SECRET  # the original still opens


def test_relabelling_the_provider_does_not_decrypt(
    vault: VaultCredentialProvider, engine: Engine, set_row
) -> None:
    # Otherwise an OpenAI key could be handed to a pipeline of another provider.
    vault.add("acme", "openai", "Prod", SECRET, "prod")
    set_row(engine, "acme", "prod", provider="anthropic")
    with pytest.raises(DecryptionError, match="does not belong to org acme / credential prod"):
        vault.get("acme", "prod")


def test_the_associated_data_separates_fields() -> None:
    # "a" + "b_c" must not collide with "a_b" + "c".
    assert secret_aad("ab", "c", "p") != secret_aad("a", "bc", "p")
    assert secret_aad("a", "b", "cp") != secret_aad("a", "bc", "p")


def test_key_ids_are_short_stable_and_distinct() -> None:
    key = base64.b64decode(generate_key())
    assert key_id_of(key) == key_id_of(bytes(key))
    assert len(key_id_of(key)) == 16
    assert key_id_of(key) != key_id_of(base64.b64decode(generate_key()))
    assert base64.b64encode(key).decode() not in key_id_of(key)


def test_sealed_values_are_bytes_a_db_can_store() -> None:
    sealed = seal(EnvKeyProvider(generate_key()), "acme", "prod", "openai", SECRET)
    assert isinstance(sealed, Sealed)
    assert all(isinstance(v, bytes) for v in (sealed.wrapped_key, sealed.nonce, sealed.ciphertext))
