"""Tenant security against the real API, metadata DB, warehouse, Redis and Celery worker.

1. A table of hostile inputs: each gets its exact status code, and afterwards no run,
   credential, org or warehouse row was created or changed.
2. A secret canary: a planted credential, used by a pipeline that fails against a server
   echoing the Authorization header back, appears nowhere afterwards.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from app import create_app
from pipeline.bootstrap import Services, build_services
from tests.integration.conftest import Stack, write_pipeline
from tests.support.security import (
    WATCHED_TABLES,
    EchoServer,
    metadata_rows,
    redis_dump,
    warehouse_fingerprint,
    warehouse_rows,
)

ADMIN = "admin-key-for-the-security-suite-0123456789"
A, B = "sec_a", "sec_b"
DEMO = "demo/sample/genai_usage"
HUGE = b'{"params": {"x": "' + b"a" * (1024 * 1024 + 10) + b'"}}'

BOMB = """\
pipeline_id: sec_bomb
name: billion laughs
provider: sec
domain: hostile
lol1: &lol1 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
lol2: &lol2 [*lol1, *lol1, *lol1, *lol1, *lol1, *lol1, *lol1, *lol1, *lol1, *lol1]
lol3: &lol3 [*lol2, *lol2, *lol2, *lol2, *lol2, *lol2, *lol2, *lol2, *lol2, *lol2]
lol4: &lol4 [*lol3, *lol3, *lol3, *lol3, *lol3, *lol3, *lol3, *lol3, *lol3, *lol3]
lol5: &lol5 [*lol4, *lol4, *lol4, *lol4, *lol4, *lol4, *lol4, *lol4, *lol4, *lol4]
lol6: &lol6 [*lol5, *lol5, *lol5, *lol5, *lol5, *lol5, *lol5, *lol5, *lol5, *lol5]
lol7: &lol7 [*lol6, *lol6, *lol6, *lol6, *lol6, *lol6, *lol6, *lol6, *lol6, *lol6]
lol8: &lol8 [*lol7, *lol7, *lol7, *lol7, *lol7, *lol7, *lol7, *lol7, *lol7, *lol7]
lol9: &lol9 [*lol8, *lol8, *lol8, *lol8, *lol8, *lol8, *lol8, *lol8, *lol8, *lol8]
steps:
  - {step_id: a, ps_type: generic.noop, config: {x: *lol9}}
"""

PYOBJ = """\
pipeline_id: sec_pyobj
name: python object tag
provider: sec
domain: hostile
steps:
  - step_id: a
    ps_type: generic.noop
    config: !!python/object/apply:os.system ["touch {marker}"]
"""

TEMPLATE = """\
pipeline_id: sec_template
name: a credential id reaches a template
provider: sec
domain: hostile
steps:
  - {step_id: a, ps_type: generic.noop, config: {cred: "${credential_id}", org: "{org_slug}"}}
"""

CANARY = """\
pipeline_id: sec_canary_echo
name: fails against a server that echoes the Authorization header
provider: openai
domain: payg
steps:
  - step_id: fetch
    ps_type: generic.http_extract
    config: {{url: "{url}", destination_table: canary_rows}}
    timeout_seconds: 30
    retry: {{max_attempts: 2, backoff_seconds: 0}}
"""


@dataclass
class Sec:
    stack: Stack
    services: Services
    client: FlaskClient
    keys: dict[str, str]
    run_id: str
    marker: Path

    def snapshot(self) -> tuple[dict[str, list[str]], str]:
        warehouse = Path(self.stack.settings.warehouse_url.split("///", 1)[1])
        return metadata_rows(self.services.store.engine, WATCHED_TABLES), warehouse_fingerprint(
            warehouse
        )


def admin_post(client: FlaskClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json=body, headers={"X-Admin-Key": ADMIN})
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def sec(sqlite_stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Sec:
    stack = sqlite_stack
    services = build_services(replace(stack.settings, admin_key=ADMIN), _dispatcher())
    client = create_app(services=services).test_client()
    marker = tmp_path_factory.mktemp("sec") / "pwned"
    for key, text in {
        "sec/hostile/bomb": BOMB,
        "sec/hostile/pyobj": PYOBJ.replace("{marker}", str(marker)),
        "sec/hostile/template": TEMPLATE,
    }.items():
        write_pipeline(stack, key, text)

    keys = {"a": services.orgs.create(A), "b": services.orgs.create(B)}
    keys["expired"] = services.orgs.create("sec_rot")
    overlap_ends = services.orgs.rotate_key("sec_rot", overlap_seconds=1)["previous_key_expires_at"]
    assert services.orgs.authenticate(keys["expired"]) == "sec_rot"  # inside its overlap
    keys["revoked"] = services.orgs.create("sec_rev")
    services.orgs.revoke_key("sec_rev")

    # Real credentials of a provider that takes one (the demo provider takes none): a plain
    # key is stored as an OpenAI admin_key.
    secret = {"provider": "openai", "name": "x", "secret": "s3cr3t-value-for-setup-only"}
    admin_post(client, f"/admin/orgs/{A}/credentials", {**secret, "credential_id": "demo_off"})
    admin_post(client, f"/admin/orgs/{A}/credentials/demo_off/disable", {})
    admin_post(client, f"/admin/orgs/{A}/credentials", {**secret, "credential_id": "oai"})
    admin_post(client, f"/admin/orgs/{B}/credentials", {**secret, "credential_id": "b_key"})

    # A real completed run of org A, so cross-org reads have something to find.
    response = client.post(
        f"/pipelines/run/{A}/{DEMO}",
        json={"start_date": "2026-01-01"},
        headers={"X-API-Key": keys["a"]},
    )
    assert response.status_code == 202, response.get_json()
    run = stack.wait(response.get_json()["run_id"])
    assert run.status == "completed", run.error_message
    # Wait out the overlap itself rather than trusting the run above to take long enough.
    time.sleep(max(0.0, (overlap_ends - services.store.clock()).total_seconds()) + 0.2)
    assert services.orgs.authenticate(keys["expired"]) is None  # its 1 s overlap has passed
    return Sec(stack, services, client, keys, run.run_id, marker)


def _dispatcher():  # type: ignore[no-untyped-def]
    from pipeline.queue import CeleryDispatcher

    return CeleryDispatcher()


# -- the hostile table ---------------------------------------------------------------------

RUN = f"/pipelines/run/{A}"
SQLI = "x'%20OR%20'1'='1"
DROP = "x';DROP%20TABLE%20organizations;--"
ADMIN_CRED = f"/admin/orgs/{A}/credentials"
CRED_BODY = {
    "provider": "openai",
    "name": "n",
    "credential_id": "fresh",
    "secret": "fresh-secret-1",
}


@dataclass(frozen=True)
class Case:
    label: str
    method: str
    path: str
    auth: str  # a | b | none | forged | prefix | expired | revoked | admin | admin_* | org_as_admin
    status: int
    code: str | None = None
    kw: tuple[tuple[str, Any], ...] = ()


def case(
    label: str, method: str, path: str, auth: str, status: int, code: str | None = None, **kw: Any
) -> Case:
    return Case(label, method, path, auth, status, code, tuple(kw.items()))


ORG_ENDPOINTS = [
    ("post", f"/pipelines/run/{A}/{DEMO}"),
    ("get", f"/pipelines/status/{A}/{{run}}"),
    ("get", f"/pipelines/history/{A}"),
    ("get", f"/pipelines/logs/{A}/{{run}}"),
    ("get", f"/pipelines/logs/{A}/{{run}}/steps"),
    ("get", f"/pipelines/logs/{A}/{{run}}/transitions"),
    ("get", f"/pipelines/logs/{A}/{{run}}/download"),
    ("post", f"/pipelines/cancel/{A}/{{run}}"),
]
ADMIN_ENDPOINTS = [
    ("post", "/admin/orgs"),
    ("get", "/admin/orgs"),
    ("post", ADMIN_CRED),
    ("get", ADMIN_CRED),
    ("post", f"{ADMIN_CRED}/oai/disable"),
    ("post", f"{ADMIN_CRED}/demo_off/enable"),
    ("delete", f"{ADMIN_CRED}/oai"),
    ("post", f"/admin/orgs/{A}/rotate-key"),
    ("post", f"/admin/orgs/{A}/revoke-key"),
]

CASES = [
    # Keys.
    case("forged key", "post", f"{RUN}/{DEMO}", "forged", 401, "unauthorized"),
    case("forged secret under A's prefix", "post", f"{RUN}/{DEMO}", "prefix", 401, "unauthorized"),
    case("SQL as the key", "get", f"/pipelines/history/{A}", "sql_key", 401, "unauthorized"),
    case("no key", "post", f"{RUN}/{DEMO}", "none", 401, "unauthorized"),
    case("expired key (overlap passed)", "post", "/pipelines/run/sec_rot/" + DEMO, "expired", 401),
    case("revoked key", "post", "/pipelines/run/sec_rev/" + DEMO, "revoked", 401, "unauthorized"),
    *(case(f"B's key on {m.upper()} {p}", m, p, "b", 404, "not_found") for m, p in ORG_ENDPOINTS),
    *(
        case(f"no admin key on {m.upper()} {p}", m, p, "none", 401, "unauthorized")
        for m, p in ADMIN_ENDPOINTS
    ),
    case("org key as admin key", "post", f"/admin/orgs/{A}/rotate-key", "org_as_admin", 401),
    case("forged admin key", "delete", f"{ADMIN_CRED}/oai", "admin_forged", 401, "unauthorized"),
    case("org key on admin list", "get", ADMIN_CRED, "a", 401, "unauthorized"),
    # SQL injection in every path parameter.
    case("SQL in org", "post", f"/pipelines/run/{SQLI}/{DEMO}", "a", 400, "invalid_path"),
    case("SQL in provider", "post", f"{RUN}/{DROP}/sample/genai_usage", "a", 400, "invalid_path"),
    case("SQL in domain", "post", f"{RUN}/demo/{DROP}/genai_usage", "a", 400, "invalid_path"),
    case("SQL in pipeline", "post", f"{RUN}/demo/sample/{SQLI}", "a", 400, "invalid_path"),
    case(
        "SQL in run_id (status)", "get", f"/pipelines/status/{A}/{SQLI}", "a", 400, "invalid_path"
    ),
    case(
        "SQL in run_id (cancel)", "post", f"/pipelines/cancel/{A}/{DROP}", "a", 400, "invalid_path"
    ),
    case("SQL in run_id (download)", "get", f"/pipelines/logs/{A}/{SQLI}/download", "a", 400),
    case(
        "SQL in admin org", "get", f"/admin/orgs/{SQLI}/credentials", "admin", 400, "invalid_path"
    ),
    case(
        "SQL in credential id", "post", f"{ADMIN_CRED}/{DROP}/disable", "admin", 400, "invalid_path"
    ),
    case(
        "SQL in history status",
        "get",
        f"/pipelines/history/{A}",
        "a",
        422,
        "validation_error",
        query_string={"status": "running' OR 1=1--"},
    ),
    case(
        "SQL in history pipeline_id",
        "get",
        f"/pipelines/history/{A}",
        "a",
        422,
        "validation_error",
        query_string={"pipeline_id": "x' OR '1'='1"},
    ),
    case(
        "SQL in history cursor",
        "get",
        f"/pipelines/history/{A}",
        "a",
        422,
        "validation_error",
        query_string={"cursor": "'; DROP TABLE org_meta_pipeline_runs; --"},
    ),
    # SQL injection in every body field.
    case(
        "SQL in start_date",
        "post",
        f"{RUN}/{DEMO}",
        "a",
        422,
        "validation_error",
        json={"start_date": "2026-01-01'; DROP TABLE organizations; --"},
    ),
    case(
        "SQL in end_date",
        "post",
        f"{RUN}/{DEMO}",
        "a",
        422,
        "validation_error",
        json={"end_date": "2026-01-01' OR '1'='1"},
    ),
    case(
        "DROP TABLE in credential_id (reaches ${credential_id})",
        "post",
        f"{RUN}/sec/hostile/template",
        "a",
        422,
        "validation_error",
        json={"credential_id": "x'; DROP TABLE org_meta_pipeline_runs; --"},
    ),
    case(
        "SQL in a params key",
        "post",
        f"{RUN}/{DEMO}",
        "a",
        422,
        "validation_error",
        json={"params": {"x'; DROP TABLE organizations; --": 1}},
    ),
    case(
        "SQL in new org slug",
        "post",
        "/admin/orgs",
        "admin",
        422,
        "validation_error",
        json={"org_slug": "x'; DROP TABLE organizations; --"},
    ),
    case(
        "SQL in credential provider",
        "post",
        ADMIN_CRED,
        "admin",
        422,
        "validation_error",
        json={**CRED_BODY, "provider": "demo'; DROP TABLE org_credentials; --"},
    ),
    case(
        "SQL in new credential id",
        "post",
        ADMIN_CRED,
        "admin",
        422,
        "validation_error",
        json={**CRED_BODY, "credential_id": "x' OR '1'='1"},
    ),
    case(
        "SQL in overlap_seconds",
        "post",
        f"/admin/orgs/{A}/rotate-key",
        "admin",
        422,
        "validation_error",
        json={"overlap_seconds": "1; DROP TABLE organizations"},
    ),
    # Path traversal in provider, domain and pipeline, raw and URL-encoded.
    case("raw .. provider", "post", f"{RUN}/../sample/genai_usage", "a", 400, "invalid_path"),
    case("raw .. domain", "post", f"{RUN}/demo/../genai_usage", "a", 400, "invalid_path"),
    case("raw .. pipeline", "post", f"{RUN}/demo/sample/..", "a", 400, "invalid_path"),
    case("raw ../../ escape", "post", f"{RUN}/demo/sample/../../../etc/passwd", "a", 400),
    case("encoded .. provider", "post", f"{RUN}/%2e%2e/sample/genai_usage", "a", 400),
    case("encoded ../ domain", "post", f"{RUN}/demo/%2e%2e%2f/genai_usage", "a", 400),
    case(
        "encoded traversal pipeline", "post", f"{RUN}/demo/sample/..%2F..%2Fetc%2Fpasswd", "a", 400
    ),
    case("double-encoded ..", "post", f"{RUN}/demo/%252e%252e/genai_usage", "a", 400),
    case("NUL in pipeline", "post", f"{RUN}/demo/sample/genai_usage%00.yml", "a", 400),
    # Size and content type.
    case(
        "oversized run body",
        "post",
        f"{RUN}/{DEMO}",
        "a",
        413,
        "body_too_large",
        data=HUGE,
        content_type="application/json",
    ),
    case(
        "oversized credential body",
        "post",
        ADMIN_CRED,
        "admin",
        413,
        "body_too_large",
        data=HUGE,
        content_type="application/json",
    ),
    case(
        "text/plain body",
        "post",
        f"{RUN}/{DEMO}",
        "a",
        415,
        "unsupported_media_type",
        data='{"start_date": "2026-01-02"}',
        content_type="text/plain",
    ),
    case(
        "form body",
        "post",
        f"{RUN}/{DEMO}",
        "a",
        415,
        "unsupported_media_type",
        data="start_date=2026-01-02",
        content_type="application/x-www-form-urlencoded",
    ),
    case(
        "multipart body",
        "post",
        f"{RUN}/{DEMO}",
        "a",
        415,
        "unsupported_media_type",
        data="--b\r\n\r\nx\r\n--b--",
        content_type="multipart/form-data; boundary=b",
    ),
    case(
        "XML credential",
        "post",
        ADMIN_CRED,
        "admin",
        415,
        "unsupported_media_type",
        data="<credential/>",
        content_type="application/xml",
    ),
    case("JSON array body", "post", f"{RUN}/{DEMO}", "a", 422, "validation_error", json=[1, 2]),
    case(
        "broken JSON",
        "post",
        f"{RUN}/{DEMO}",
        "a",
        400,
        "invalid_json",
        data='{"start_date":',
        content_type="application/json",
    ),
    case(
        "NaN in JSON",
        "post",
        f"{RUN}/{DEMO}",
        "a",
        400,
        "invalid_json",
        data='{"params": {"x": NaN}}',
        content_type="application/json",
    ),
    # Unicode confusables.
    case("Cyrillic a in org slug", "post", f"/pipelines/run/sec_\u0430/{DEMO}", "a", 400),
    case("fullwidth d in provider", "post", f"{RUN}/\uff44emo/sample/genai_usage", "a", 400),
    case("Cyrillic org in admin path", "get", "/admin/orgs/sec_\u0430/credentials", "admin", 400),
    case(
        "Cyrillic slug for a new org",
        "post",
        "/admin/orgs",
        "admin",
        422,
        "validation_error",
        json={"org_slug": "sec_\u0430"},
    ),
    # Hostile pipeline files.
    case(
        "YAML bomb (billion laughs)", "post", f"{RUN}/sec/hostile/bomb", "a", 422, "invalid_config"
    ),
    case("!!python/object tag", "post", f"{RUN}/sec/hostile/pyobj", "a", 422, "invalid_config"),
    # Credentials across tenants and providers.
    case(
        "B's credential id",
        "post",
        f"{RUN}/{DEMO}",
        "a",
        422,
        "invalid_credential",
        json={"credential_id": "b_key", "start_date": "2026-01-02"},
    ),
    case(
        "credential of another provider",
        "post",
        f"{RUN}/{DEMO}",
        "a",
        422,
        "invalid_credential",
        json={"credential_id": "oai", "start_date": "2026-01-02"},
    ),
    case(
        "disabled credential",
        "post",
        f"{RUN}/{DEMO}",
        "a",
        422,
        "invalid_credential",
        json={"credential_id": "demo_off", "start_date": "2026-01-02"},
    ),
    case(
        "B's credential through A's admin path",
        "post",
        f"{ADMIN_CRED}/b_key/disable",
        "admin",
        404,
        "not_found",
    ),
]


def headers_for(sec: Sec, auth: str) -> dict[str, str]:
    key = sec.keys["a"]
    prefix = key.split("_")[1]
    return {
        "a": {"X-API-Key": key},
        "b": {"X-API-Key": sec.keys["b"]},
        "none": {},
        "forged": {"X-API-Key": "po_0123456789ab_" + "F" * 43},
        "prefix": {"X-API-Key": f"po_{prefix}_" + "G" * 43},
        "sql_key": {"X-API-Key": "' OR '1'='1' --"},
        "expired": {"X-API-Key": sec.keys["expired"]},
        "revoked": {"X-API-Key": sec.keys["revoked"]},
        "admin": {"X-Admin-Key": ADMIN},
        "admin_forged": {"X-Admin-Key": ADMIN[:-1] + "X"},
        "org_as_admin": {"X-Admin-Key": key, "X-API-Key": key},
    }[auth]


def test_the_table_is_large_and_covers_the_issue() -> None:
    assert len(CASES) >= 40
    assert len({c.label for c in CASES}) == len(CASES)


@pytest.mark.parametrize("hostile", CASES, ids=[c.label for c in CASES])
def test_hostile_input_gets_its_status_and_changes_nothing(sec: Sec, hostile: Case) -> None:
    before = sec.snapshot()
    path = hostile.path.replace("{run}", sec.run_id)
    kw = dict(hostile.kw)

    response = getattr(sec.client, hostile.method)(
        path, headers=headers_for(sec, hostile.auth), **kw
    )

    assert response.status_code == hostile.status, (hostile.label, response.get_data(as_text=True))
    assert response.mimetype == "application/problem+json"
    if hostile.code:
        assert response.get_json()["code"] == hostile.code
    for header in ("X-Content-Type-Options", "Content-Security-Policy", "Cache-Control"):
        assert header in response.headers  # security headers on error responses too
    assert "Traceback" not in response.get_data(as_text=True)
    assert sec.snapshot() == before
    assert not sec.marker.exists()  # the !!python/object payload never ran


def test_sql_in_params_is_stored_as_data_and_drops_nothing(sec: Sec) -> None:
    # params are opaque values: accepted, stored as JSON, never spliced into SQL.
    payload = "'; DROP TABLE organizations; --"
    before = sec.snapshot()
    response = sec.client.post(
        f"{RUN}/{DEMO}",
        json={"start_date": "2026-01-03", "params": {"note": payload}},
        headers={"X-API-Key": sec.keys["a"]},
    )
    assert response.status_code == 202, response.get_json()
    run = sec.stack.wait(response.get_json()["run_id"])
    assert run.status == "completed" and run.params == {"note": payload}
    after = sec.snapshot()
    # The snapshot the hostile table relies on does see a run and warehouse writes.
    assert after[0]["org_meta_pipeline_runs"] != before[0]["org_meta_pipeline_runs"]
    assert after[1] != before[1]
    assert sec.services.store.get_org(A) is not None
    assert sec.services.orgs.authenticate(sec.keys["b"]) == B


# -- the secret canary ---------------------------------------------------------------------


def test_a_planted_secret_appears_nowhere(sec: Sec, caplog: pytest.LogCaptureFixture) -> None:
    from pipeline.queue import build_canvas, step_task_id
    from tasks.celery_app import app as celery_app

    caplog.set_level(logging.DEBUG)
    canary = f"cnry{uuid.uuid4().hex}"
    echo = EchoServer()
    try:
        write_pipeline(
            sec.stack, "openai/payg/sec_canary_echo", CANARY.format(url=f"{echo.url}/v1/usage")
        )
        # This app has its own catalog, which rescans at most every 2 s: refresh it now.
        sec.services.catalog.refresh()
        admin_post(
            sec.client,
            f"/admin/orgs/{A}/credentials",
            {
                "provider": "openai",
                "name": "Canary",
                "credential_id": "canary",
                "secret": {"api_key": canary},
            },
        )
        key = {"X-API-Key": sec.keys["a"]}
        response = sec.client.post(
            f"{RUN}/openai/payg/sec_canary_echo", json={"credential_id": "canary"}, headers=key
        )
        assert response.status_code == 202, response.get_json()
        run_id = response.get_json()["run_id"]
        run = sec.stack.wait(run_id)
    finally:
        echo.close()

    # The secret really went out (twice: a 500, retried, then a 401) and came back echoed.
    assert echo.received == [f"Bearer {canary}"] * 2
    assert run.status == "failed"
    assert "HTTP 401" in run.error_message and "[REDACTED]" in run.error_message
    attempts = sec.services.store.step_attempts(run_id)
    assert [(a.attempt, a.status) for a in attempts] == [(1, "retrying"), (2, "failed")]
    assert "HTTP 500" in attempts[0].error and "[REDACTED]" in attempts[0].error

    def clean(where: str, text: str | bytes) -> None:
        blob = text.encode() if isinstance(text, str) else text
        assert canary.encode() not in blob, f"the canary leaked into {where}"

    # Every table of the metadata DB (the credential row holds only ciphertext).
    for table, rows in metadata_rows(sec.services.store.engine).items():
        clean(f"table {table}", "\n".join(rows))
    # The worker's log file (and it is the right file: it logged this run).
    worker_log = sec.stack.worker.log_path.read_text(errors="replace")  # type: ignore[union-attr]
    assert run_id in worker_log
    clean("the worker log", worker_log)
    # This process's logs.
    clean("the test process logs", caplog.text)
    clean("log record args", repr([(r.msg, r.args) for r in caplog.records]))
    # Everything the API hands out about the run, the NDJSON download first.
    download = sec.client.get(f"/pipelines/logs/{A}/{run_id}/download", headers=key)
    assert download.status_code == 200 and b"[REDACTED]" in download.get_data()
    clean("the NDJSON download", download.get_data())
    for suffix in ("", "/steps", "/transitions"):
        clean(
            f"logs{suffix}",
            sec.client.get(f"/pipelines/logs/{A}/{run_id}{suffix}", headers=key).get_data(),
        )
    clean("status", sec.client.get(f"/pipelines/status/{A}/{run_id}", headers=key).get_data())
    # Every Redis key and value: broker queues, Celery results, the quota mirror.
    dumped = list(redis_dump(sec.stack.env["REDIS_URL"]))
    assert any(run_id.encode() in k for k, _ in dumped)  # results of this run are in there
    for redis_key, value in dumped:
        clean(f"redis key {redis_key!r}", redis_key + b" " + value)
    # Celery: task arguments are ids only, and the stored result carries no secret.
    canvas = build_canvas(run_id, run.plan)
    clean("the Celery canvas", json.dumps(canvas, default=str))
    assert [list(t["args"]) for t in canvas.tasks][:1] == [[run_id, "fetch"]]
    meta = celery_app.backend.get_task_meta(step_task_id(run_id, "fetch"))
    assert meta["status"] == "FAILURE" and "StepFailed" in repr(meta["result"])
    clean("the Celery result", repr(meta))
    # Nor the warehouse.
    warehouse = Path(sec.stack.settings.warehouse_url.split("///", 1)[1])
    clean("the warehouse", repr(warehouse_rows(warehouse)))
