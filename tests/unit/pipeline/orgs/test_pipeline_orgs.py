"""OrgService: API keys that authenticate, and that are stored only as prefix + hash."""

from __future__ import annotations

import hashlib
import re

import pytest
from sqlalchemy import select

from pipeline.orgs.service import OrgService
from pipeline.storage.run_store import SqlRunStore
from pipeline.storage.tables import organizations
from pipeline_ops_core.errors import AlreadyExistsError, TerminalError

KEY_RE = re.compile(r"^po_([a-z0-9]{12})_([A-Za-z0-9_\-]{20,100})$")


@pytest.fixture
def orgs(store: SqlRunStore) -> OrgService:
    # `store` already holds acme and globex with dummy keys; these tests add their own.
    return OrgService(store)


def org_row(store: SqlRunStore, slug: str) -> dict[str, object]:
    with store.engine.connect() as conn:
        row = conn.execute(select(organizations).where(organizations.c.org_slug == slug)).mappings()
        return dict(row.one())


def test_create_returns_a_key_that_authenticates_to_the_org(
    orgs: OrgService, store: SqlRunStore
) -> None:
    key = orgs.create("initech", "Initech Corp")

    assert KEY_RE.match(key)
    assert orgs.authenticate(key) == "initech"
    org = store.get_org("initech")
    assert org["name"] == "Initech Corp"
    assert "initech" in [o["org_slug"] for o in store.list_orgs()]


def test_the_name_defaults_to_the_slug(orgs: OrgService, store: SqlRunStore) -> None:
    orgs.create("hooli")
    assert store.get_org("hooli")["name"] == "hooli"


def test_each_org_gets_its_own_key(orgs: OrgService) -> None:
    a = orgs.create("org_a")
    b = orgs.create("org_b")
    assert a != b
    assert orgs.authenticate(a) == "org_a"
    assert orgs.authenticate(b) == "org_b"


def test_only_the_prefix_and_a_sha256_hash_are_stored(orgs: OrgService, store: SqlRunStore) -> None:
    key = orgs.create("initech")
    prefix, secret = KEY_RE.match(key).groups()

    row = org_row(store, "initech")

    assert row["api_key_prefix"] == prefix
    assert row["api_key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    for value in row.values():
        text = str(value)
        assert key not in text
        assert secret not in text
        assert secret[:12] not in text


def test_a_tampered_key_is_refused(orgs: OrgService) -> None:
    key = orgs.create("initech")
    last = key[-1]
    tampered = key[:-1] + ("A" if last != "A" else "B")
    assert orgs.authenticate(tampered) is None
    assert orgs.authenticate(key + "x") is None
    assert orgs.authenticate(key[:-1]) is None
    assert orgs.authenticate(key.upper()) is None
    assert orgs.authenticate(key + "\n") is None
    assert orgs.authenticate(key) == "initech"


def test_a_secret_under_another_orgs_prefix_is_refused(orgs: OrgService) -> None:
    a = orgs.create("org_a")
    b = orgs.create("org_b")
    prefix_b = KEY_RE.match(b).group(1)
    secret_a = KEY_RE.match(a).group(2)
    assert orgs.authenticate(f"po_{prefix_b}_{secret_a}") is None


@pytest.mark.parametrize("other", ["pk_", "sk_", "PO_", "po-", ""])
def test_a_key_with_another_scheme_prefix_is_refused(orgs: OrgService, other: str) -> None:
    key = orgs.create("initech")
    assert orgs.authenticate(other + key.removeprefix("po_")) is None


@pytest.mark.parametrize(
    "garbage",
    [None, "", "po_", "po__", "garbage", "po_aaaaaaaaaaaa_short", "' OR 1=1 --", "po_" + "a" * 500],
)
def test_garbage_and_none_are_refused(orgs: OrgService, garbage: str | None) -> None:
    orgs.create("initech")
    assert orgs.authenticate(garbage) is None


def test_an_unknown_prefix_is_refused(orgs: OrgService) -> None:
    assert orgs.authenticate("po_0123456789ab_" + "x" * 43) is None


@pytest.mark.parametrize(
    "slug",
    ["a", "Acme", "acme-corp", "acme corp", "", "x" * 65, "../etc", "acme\n", "café"],
)
def test_invalid_slugs_are_refused_with_a_clear_message(
    orgs: OrgService, store: SqlRunStore, slug: str
) -> None:
    before = store.list_orgs()
    with pytest.raises(TerminalError, match=r"invalid org slug .*lower-case letters, digits and _"):
        orgs.create(slug)
    assert store.list_orgs() == before


@pytest.mark.parametrize("slug", ["ab", "acme_2", "x" * 64, "0rg"])
def test_valid_slug_edges_are_accepted(orgs: OrgService, slug: str) -> None:
    assert orgs.authenticate(orgs.create(slug)) == slug


def test_a_duplicate_org_is_refused_and_keeps_its_key(orgs: OrgService, store: SqlRunStore) -> None:
    key = orgs.create("initech")
    row = org_row(store, "initech")

    with pytest.raises(AlreadyExistsError, match="org 'initech' already exists"):
        orgs.create("initech", "Another name")

    assert org_row(store, "initech") == row
    assert orgs.authenticate(key) == "initech"
