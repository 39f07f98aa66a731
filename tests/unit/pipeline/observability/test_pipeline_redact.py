"""redact(): secrets masked in everything logged or stored; ordinary text untouched."""

from __future__ import annotations

import uuid

import pytest

from pipeline.observability.redact import MASK, redact, register_secret
from pipeline.orgs.service import new_api_key


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer eyJhbGciOi.payload.sig", "eyJhbGciOi.payload.sig"),
        ("authorization=Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        ("AUTHORIZATION: tok_live_998877", "tok_live_998877"),
    ],
)
def test_authorization_headers_are_masked(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out
    assert MASK in out
    assert out.lower().startswith(text.lower()[:13])  # "authorization" is kept


@pytest.mark.parametrize(
    "text",
    [
        "request headers {'Authorization': 'Bearer abc123def456', 'Accept': '*/*'}",
        'request headers {"Authorization": "Bearer abc123def456"}',
        "{'authorization': 'Basic abc123def456'}",
    ],
)
def test_authorization_headers_inside_a_dict_or_json_are_masked(text: str) -> None:
    # How a headers mapping shows up in an exception message or a logged request:
    # the key is quoted, so a quote sits between "Authorization" and the colon.
    out = redact(text)
    assert "abc123def456" not in out
    assert MASK in out


@pytest.mark.parametrize(
    "key",
    [
        "sk-abcdefgh12345678",
        "sk-proj-AbCdEf_0123456789-xyz",
        "sk-ant-api03-0123456789abcdef",
    ],
)
def test_provider_keys_are_masked(key: str) -> None:
    out = redact(f"401 from provider for key {key} (invalid)")
    assert key not in out
    assert out == f"401 from provider for key {MASK} (invalid)"


def test_org_api_keys_are_masked() -> None:
    key, _prefix = new_api_key()
    out = redact(f"auth failed for {key}.")
    assert key not in out
    assert key.split("_", 2)[2] not in out
    assert out == f"auth failed for {MASK}."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET /v1/usage?api_key=abc123XYZ&page=2", f"GET /v1/usage?api_key={MASK}&page=2"),
        ("api-key: abc123XYZ", f"api-key: {MASK}"),
        ('{"apikey": "abc123XYZ"}', f'{{"apikey": "{MASK}"}}'),
        ("X-API-Key=po_short", f"X-API-Key={MASK}"),
        ("password=hunter22 user=bob", f"password={MASK} user=bob"),
        ("token: t0k3n", f"token: {MASK}"),
    ],
)
def test_key_value_secrets_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_passwords_in_urls_are_masked() -> None:
    out = redact("could not connect to postgresql://po:s3cretpw@db.internal:5432/meta")
    assert "s3cretpw" not in out
    assert out == f"could not connect to postgresql://po:{MASK}@db.internal:5432/meta"


def test_registered_secrets_are_masked_wherever_they_appear() -> None:
    secret = f"vault-{uuid.uuid4().hex}"
    assert secret in redact(f"value {secret}")  # not known yet, no pattern matches
    register_secret(secret)
    assert redact(f"value {secret} and again:{secret}") == f"value {MASK} and again:{MASK}"


def test_short_or_empty_values_are_not_registered() -> None:
    register_secret("abc")
    register_secret("")
    register_secret(None)
    assert redact("abc is a word") == "abc is a word"


@pytest.mark.parametrize(
    "text",
    [
        "step extract completed: 10 rows written to acme_dev.demo_usage_raw",
        "task-1234567890abcdef started on host:42",
        "input_tokens=611004 output_tokens=243366 requests=863",
        "run 66823a0b-1071-476d-80c6-868e84519b20 moved queued -> running",
        "the po_box column is free text",
        "https://api.openai.com/v1/organization/usage",
    ],
)
def test_ordinary_text_is_untouched(text: str) -> None:
    assert redact(text) == text


def test_empty_and_none_pass_through() -> None:
    assert redact(None) is None
    assert redact("") == ""


# -- scope: a step's secrets live for the step ---------------------------------------------------


def test_secrets_registered_in_a_scope_are_masked_there_and_forgotten_after() -> None:
    import contextvars
    import threading

    from pipeline.observability.redact import register_secrets, secret_scope

    secret = "tenant-a-secret-value-91"
    with secret_scope() as scope:
        register_secrets([secret, "attempt", "short7x"])  # under 8 characters: never
        assert redact(f"x {secret} attempt short7x") == f"x {MASK} attempt short7x"
        assert len(scope) == 1
        # A thread started in a copy of the step's context (the heartbeat) masks it too.
        seen: list[str | None] = []
        context = contextvars.copy_context()
        thread = threading.Thread(target=context.run, args=(lambda: seen.append(redact(secret)),))
        thread.start()
        thread.join()
        assert seen == [MASK]
    assert scope == set()  # emptied at the end
    assert redact(f"x {secret}") == f"x {secret}"


def test_a_credential_registers_only_its_declared_secret_fields() -> None:
    from pipeline.observability.redact import register_decrypted, secret_scope

    credential = {
        "admin_key": "sk-admin-zzzzzzzz-1234",
        "base_url": "https://completed.example/victim_org",
    }
    with secret_scope():
        register_decrypted("openai", credential)
        text = "key sk-admin-zzzzzzzz-1234 at https://completed.example/victim_org: completed"
        assert redact(text) == f"key {MASK} at https://completed.example/victim_org: completed"


def test_an_undeclared_providers_credential_is_all_secret_for_its_scope() -> None:
    from pipeline.observability.redact import register_decrypted, secret_scope

    with secret_scope():
        register_decrypted("no_such_provider", {"token_value": "opaque-value-123456"})
        assert redact("opaque-value-123456") == MASK
    assert redact("opaque-value-123456") == "opaque-value-123456"


# -- stored text cap ----------------------------------------------------------------------------


def test_long_text_is_cut_to_the_limit_with_a_note() -> None:
    from pipeline.observability.redact import cap_text

    text = "é" * (3 * 1024 * 1024)  # 6 MiB of UTF-8
    capped = cap_text(text, 4096)
    assert capped is not None
    assert len(capped.encode()) <= 4096
    assert capped.endswith("… [truncated 6.0 MiB]")
    assert cap_text("short", 4096) == "short"
    # Cut again after a prefix, the first note (how much of the original went) stays.
    again = cap_text("step x failed: " + capped, 4096)
    assert again is not None and len(again.encode()) <= 4096
    assert again.startswith("step x failed: ") and again.endswith("… [truncated 6.0 MiB]")
