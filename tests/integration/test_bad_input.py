"""Bad input gets a clear error and changes nothing: against the real stack (worker running).

Each case asserts the status code, the problem code, and that no run row and no
warehouse row was created.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tests.integration.conftest import Stack, write_pipeline
from tests.support.records import count_runs

ORG, OTHER = "badin", "badin_other"

BROKEN = {
    "broken/yaml/malformed": "pipeline_id: x\nsteps: [\n  - step_id: a\n",
    "broken/yaml/unknown_ps_type": (
        "pipeline_id: t_unknown\nname: n\nprovider: broken\ndomain: yaml\n"
        "steps:\n  - {step_id: a, ps_type: generic.does_not_exist}\n"
    ),
    "broken/yaml/cycle": (
        "pipeline_id: t_cycle\nname: n\nprovider: broken\ndomain: yaml\nsteps:\n"
        "  - {step_id: a, ps_type: generic.noop, depends_on: [b]}\n"
        "  - {step_id: b, ps_type: generic.noop, depends_on: [a]}\n"
    ),
    "broken/yaml/unknown_variable": (
        "pipeline_id: t_var\nname: n\nprovider: broken\ndomain: yaml\nsteps:\n"
        "  - {step_id: a, ps_type: generic.noop, config: {x: '${nope}'}}\n"
    ),
}


@pytest.fixture(scope="module")
def keys(sqlite_stack: Stack) -> dict[str, str]:
    for key, text in BROKEN.items():
        write_pipeline(sqlite_stack, key, text)
    return {org: sqlite_stack.services.orgs.create(org) for org in (ORG, OTHER)}


@pytest.fixture(scope="module")
def client(sqlite_stack: Stack):  # type: ignore[no-untyped-def]
    from app import create_app

    return create_app(sqlite_stack.settings, sqlite_stack.services).test_client()


def warehouse_tables(stack: Stack) -> int:
    path = Path(stack.settings.warehouse_url.split("///", 1)[1])
    if not path.exists():
        return 0
    con = duckdb.connect(str(path), read_only=True)
    try:
        query = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema LIKE 'badin%'"
        return int(con.execute(query).fetchone()[0])
    finally:
        con.close()


def post_run(client, key: str | None, path: str, **kw):  # type: ignore[no-untyped-def]
    headers = {"X-API-Key": key} if key else {}
    return client.post(f"/pipelines/run/{path}", headers=headers, **kw)


CASES = [
    ("malformed YAML", f"{ORG}/broken/yaml/malformed", {}, 422, "invalid_config"),
    ("unknown ps_type", f"{ORG}/broken/yaml/unknown_ps_type", {}, 422, "invalid_config"),
    ("depends_on cycle", f"{ORG}/broken/yaml/cycle", {}, 422, "invalid_config"),
    ("unknown template variable", f"{ORG}/broken/yaml/unknown_variable", {}, 422, "invalid_config"),
    ("dot-dot segment", f"{ORG}/demo/../genai_usage", {}, 400, "invalid_path"),
    ("encoded dot-dot", f"{ORG}/demo/%2e%2e/genai_usage", {}, 400, "invalid_path"),
    ("encoded slash", f"{ORG}/demo/sample%2Fx/genai_usage", {}, 400, "invalid_path"),
    ("upper case", f"{ORG}/Demo/sample/genai_usage", {}, 400, "invalid_path"),
    (
        "non-JSON body",
        f"{ORG}/demo/sample/genai_usage",
        {"data": "start_date=2026-01-01", "content_type": "text/plain"},
        415,
        "unsupported_media_type",
    ),
    (
        "body over 1 MiB",
        f"{ORG}/demo/sample/genai_usage",
        {"data": b"{" + b" " * (1024 * 1024 + 10) + b"}", "content_type": "application/json"},
        413,
        "body_too_large",
    ),
    (
        "bad date",
        f"{ORG}/demo/sample/genai_usage",
        {"json": {"start_date": "2026-02-30"}},
        422,
        "validation_error",
    ),
    (
        "end before start",
        f"{ORG}/demo/sample/genai_usage",
        {"json": {"start_date": "2026-01-05", "end_date": "2026-01-01"}},
        422,
        "validation_error",
    ),
]


@pytest.mark.parametrize(
    ("label", "path", "kw", "status", "code"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_run_requests_change_nothing(
    sqlite_stack: Stack,
    keys: dict[str, str],
    client,
    label,
    path,
    kw,
    status,
    code,  # type: ignore[no-untyped-def]
) -> None:
    runs_before = count_runs(sqlite_stack.services.store)
    response = post_run(client, keys[ORG], path, **kw)
    assert response.status_code == status, (label, response.get_json())
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.get_json()["code"] == code
    assert count_runs(sqlite_stack.services.store) == runs_before
    assert warehouse_tables(sqlite_stack) == 0


@pytest.mark.parametrize("key_kind", ["missing", "unknown", "other_org"])
def test_bad_keys_change_nothing(
    sqlite_stack: Stack, keys: dict[str, str], client, key_kind
) -> None:  # type: ignore[no-untyped-def]
    key = {"missing": None, "unknown": "po_aaaaaaaaaaaa_" + "x" * 40, "other_org": keys[OTHER]}[
        key_kind
    ]
    runs_before = count_runs(sqlite_stack.services.store)
    response = post_run(client, key, f"{ORG}/demo/sample/genai_usage", json={})
    expected = 404 if key_kind == "other_org" else 401
    assert response.status_code == expected
    assert count_runs(sqlite_stack.services.store) == runs_before
    assert warehouse_tables(sqlite_stack) == 0


@pytest.mark.parametrize(
    "path",
    [
        "status/{org}/{run}",
        "logs/{org}/{run}",
        "logs/{org}/{run}/steps",
        "logs/{org}/{run}/transitions",
        "logs/{org}/{run}/download",
    ],
)
def test_unknown_run_id_is_404(client, keys: dict[str, str], path: str) -> None:  # type: ignore[no-untyped-def]
    url = "/pipelines/" + path.format(org=ORG, run="00000000-0000-0000-0000-000000000000")
    response = client.get(url, headers={"X-API-Key": keys[ORG]})
    assert response.status_code == 404
    assert response.get_json()["code"] == "not_found"
    cancel = client.post(
        f"/pipelines/cancel/{ORG}/00000000-0000-0000-0000-000000000000",
        headers={"X-API-Key": keys[ORG]},
    )
    assert cancel.status_code == 404
