"""Org API key rotation (with an overlap window) and revocation."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select

from pipeline.orgs.keys import MAX_OVERLAP_SECONDS, REVOKED_PREFIX
from pipeline.orgs.service import OrgService
from pipeline.storage.run_store import SqlRunStore
from pipeline.storage.tables import organizations
from pipeline_ops_core.errors import NotFoundError, TerminalError


@pytest.fixture
def orgs(store: SqlRunStore) -> OrgService:
    return OrgService(store)


def org_row(store: SqlRunStore, slug: str) -> dict[str, object]:
    with store.engine.connect() as conn:
        query = select(organizations).where(organizations.c.org_slug == slug)
        return dict(conn.execute(query).mappings().one())


def test_rotation_without_overlap_stops_the_old_key_at_once(orgs: OrgService, clock) -> None:
    old = orgs.create("initech")

    rotated = orgs.rotate_key("initech")

    assert rotated["previous_key_expires_at"] is None
    assert orgs.authenticate(rotated["api_key"]) == "initech"
    assert orgs.authenticate(old) is None


def test_the_old_key_works_until_the_overlap_window_ends(
    orgs: OrgService, store: SqlRunStore, clock
) -> None:
    old = orgs.create("initech")

    rotated = orgs.rotate_key("initech", overlap_seconds=300)

    new = rotated["api_key"]
    assert rotated["previous_key_expires_at"] == clock.now + timedelta(seconds=300)
    assert orgs.authenticate(old) == "initech"
    assert orgs.authenticate(new) == "initech"
    clock.advance(299)
    assert orgs.authenticate(old) == "initech"
    clock.advance(1)
    assert orgs.authenticate(old) is None  # expired: the window is [rotation, +300s)
    assert orgs.authenticate(new) == "initech"
    row = org_row(store, "initech")
    assert row["previous_key_hash"] == hashlib.sha256(old.encode()).hexdigest()
    assert old not in str(row)


def test_a_second_rotation_replaces_the_previous_key(orgs: OrgService) -> None:
    first = orgs.create("initech")
    second = orgs.rotate_key("initech", overlap_seconds=300)["api_key"]
    third = orgs.rotate_key("initech", overlap_seconds=300)["api_key"]

    assert orgs.authenticate(first) is None
    assert orgs.authenticate(second) == "initech"
    assert orgs.authenticate(third) == "initech"


def test_revoke_stops_every_key_until_the_next_rotation(
    orgs: OrgService, store: SqlRunStore
) -> None:
    old = orgs.create("initech")
    current = orgs.rotate_key("initech", overlap_seconds=300)["api_key"]

    orgs.revoke_key("initech")

    assert orgs.authenticate(current) is None
    assert orgs.authenticate(old) is None
    row = org_row(store, "initech")
    assert str(row["api_key_hash"]).startswith(REVOKED_PREFIX)
    assert row["key_revoked_at"] is not None and row["previous_key_hash"] is None

    # Rotating after a revocation never revives the revoked key, even with an overlap.
    fresh = orgs.rotate_key("initech", overlap_seconds=300)
    assert fresh["previous_key_expires_at"] is None
    assert orgs.authenticate(fresh["api_key"]) == "initech"
    assert orgs.authenticate(current) is None
    assert org_row(store, "initech")["key_revoked_at"] is None


def test_revoking_only_the_previous_key_ends_the_overlap(orgs: OrgService) -> None:
    old = orgs.create("initech")
    new = orgs.rotate_key("initech", overlap_seconds=300)["api_key"]

    orgs.revoke_key("initech", previous_only=True)

    assert orgs.authenticate(old) is None
    assert orgs.authenticate(new) == "initech"


def test_other_orgs_are_untouched(orgs: OrgService) -> None:
    a = orgs.create("org_a")
    b = orgs.create("org_b")
    orgs.rotate_key("org_a")
    orgs.revoke_key("org_a")
    assert orgs.authenticate(a) is None
    assert orgs.authenticate(b) == "org_b"


@pytest.mark.parametrize("overlap", [-1, MAX_OVERLAP_SECONDS + 1])
def test_an_out_of_range_overlap_is_refused(orgs: OrgService, overlap: int) -> None:
    key = orgs.create("initech")
    with pytest.raises(TerminalError, match="overlap_seconds must be"):
        orgs.rotate_key("initech", overlap_seconds=overlap)
    assert orgs.authenticate(key) == "initech"


def test_an_unknown_org_is_not_found(orgs: OrgService) -> None:
    with pytest.raises(NotFoundError, match="org 'initech' not found"):
        orgs.rotate_key("initech")
    with pytest.raises(NotFoundError, match="org 'initech' not found"):
        orgs.revoke_key("initech")
