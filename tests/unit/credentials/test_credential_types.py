"""Credential kinds declared in providers.yml: parsing, checking a secret, secret and URL fields."""

from __future__ import annotations

import json

import pytest

from processors.credential_types import parse_credential_types
from processors.providers import ProviderInfo, load_registry, parse_registry

Registry = dict[str, ProviderInfo]


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry()


def test_every_shipped_provider_declares_its_credential(registry: Registry) -> None:
    needs = {key for key, info in registry.items() if info.credential_required}
    assert needs == {"openai", "anthropic", "gemini", "gcp", "aws", "azure", "oci"}
    for key in needs:
        kind = registry[key].credential
        assert kind is not None and kind.fields, key
    for key in ("demo", "genai", "subscription", "deepseek"):
        assert registry[key].credential is None and not registry[key].credential_required


@pytest.mark.parametrize(
    ("provider", "secret", "expected"),
    [
        ("openai", {"admin_key": "sk-admin-x"}, []),
        ("openai", {"api_key": "sk-admin-x"}, []),
        ("openai", {"apikey": "sk"}, ["unknown field(s) apikey", "needs admin_key or api_key"]),
        ("openai", {"admin_key": "  "}, ["needs admin_key or api_key"]),
        ("openai", {"admin_key": 5}, ["field admin_key must be text"]),
        ("aws", {"access_key_id": "AKIA"}, ["missing field(s) secret_access_key"]),
        ("azure", {"account_url": "https://a.blob.core.windows.net"}, ["account_url+account_key"]),
        ("azure", {"connection_string": "x", "container": "c"}, []),
        ("oci", {"user": "u"}, ["missing field(s) fingerprint, tenancy, region, key_content"]),
        ("gcp", {"service_account": "not json"}, ["field service_account is not JSON"]),
        ("gcp", {"service_account": [1]}, ["field service_account must be a JSON object"]),
        (
            "gcp",
            {"service_account": {"type": "service_account", "private_key": "k"}},
            ["missing field(s) service_account.client_email"],
        ),
        (
            "gcp",
            {"type": "service_account", "private_key": "k", "client_email": "a@b", "bucket": "b"},
            ["unknown field(s) bucket"],
        ),
    ],
)
def test_problems_name_the_fields(
    registry: Registry, provider: str, secret: dict[str, object], expected: list[str]
) -> None:
    kind = registry[provider].credential
    assert kind is not None
    problems = kind.problems(secret)
    text = "; ".join(problems)
    if not expected:
        assert problems == []
    for part in expected:
        assert part in text
    for value in secret.values():  # messages name fields, never values
        if isinstance(value, str) and len(value) > 3 and value != "service_account":
            assert value not in text


def test_secret_and_url_values_follow_the_declaration(registry: Registry) -> None:
    kind = registry["gcp"].credential
    assert kind is not None
    key = {
        "type": "service_account",
        "private_key": "PEM-KEY",
        "private_key_id": "KID1",
        "client_email": "sa@p.iam.gserviceaccount.com",
        "token_uri": "https://t.example/token",
    }
    secret = {
        "service_account": json.dumps(key),
        "billing_table": "p.d.gcp_billing_export_v1_X",
        "catalog_api_key": "CATKEY",
        "location": "EU",
        "api_endpoint": "https://bq.example",
    }
    assert sorted(kind.secret_values(secret)) == ["CATKEY", "KID1", "PEM-KEY"]
    assert kind.url_values(secret) == {
        "service_account.token_uri": "https://t.example/token",
        "api_endpoint": "https://bq.example",
    }
    # Region, bucket and table names are never secrets.
    aws = registry["aws"].credential
    assert aws is not None
    values = aws.secret_values({"access_key_id": "AKIA1", "secret_access_key": "S3CR3T",
                                "region": "eu-west-1", "bucket": "completed"})  # fmt: skip
    assert values == ["S3CR3T"]


def test_bad_declarations_are_reported() -> None:
    kinds, problems = parse_credential_types(
        {
            "ok": {"fields": {"k": {"secret": True}}, "plain_field": "k"},
            "none": {"fields": {"k": {}}},
            "Bad": {"fields": {"k": {}}},
            "empty": {"fields": {}},
            "flags": {
                "fields": {"u": {"secret": True, "url": True, "colour": 1}, "r": {"required": "x"}}
            },
            "groups": {"fields": {"a": {}}, "any_of": [["a", "zz"]], "plain_field": "a"},
            "nest": {"fields": {"n": {"nested": "nowhere"}}},
            "hosts": {"fields": {"h": {"hosts": ["a.example"]}, "u": {"url": True, "hosts": "x"}}},
        }
    )  # fmt: skip
    assert set(kinds) == {"ok", "nest"}
    text = "\n".join(problems)
    for part in ("credential_types.none", "credential_types.Bad", "fields must be a non-empty",
                 "unknown flag 'colour'", "a URL is not a secret", "required must be true or false",
                 "any_of must be", "plain_field must name a declared secret field",
                 "nested kind 'nowhere' is not declared",
                 "fields.h.hosts must be a list of host names on a url field",
                 "fields.u.hosts must be a list"):  # fmt: skip
        assert part in text


def test_a_provider_must_name_a_declared_kind() -> None:
    raw = {
        "providers": [
            {"key": "a", "display_name": "A", "domains": ["x"], "credential_type": "missing"},
            {"key": "b", "display_name": "B", "domains": ["x"], "credential_type": "none",
             "credential_required": True},
            {"key": "c", "display_name": "C", "domains": ["x"], "credential_type": "k",
             "credential_required": False},
        ],
        "credential_types": {"k": {"fields": {"t": {"secret": True}}}},
        "extra": 1,
    }  # fmt: skip
    providers, problems = parse_registry(raw)
    assert list(providers) == ["c"] and providers["c"].credential_required is False
    text = "\n".join(problems)
    assert "credential_type 'missing' is not declared" in text
    assert "credential_required is true but credential_type is none" in text
    assert "unknown top-level key 'extra'" in text
