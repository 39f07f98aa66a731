"""POST /pipelines/run/{org}/{provider}/{domain}/{pipeline}: success and every rejection."""

from __future__ import annotations

import io
import json
from datetime import date

import pytest
from flask.testing import FlaskClient

from app import create_app
from pipeline.bootstrap import Services, build_services
from pipeline.settings import Settings
from pipeline_ops_core.errors import QuotaExceededError, SubscriptionInactiveError, TemplateError
from quota.base import AllowAllGate
from tests.support.api import (
    RUN_URL,
    RecordingDispatcher,
    assert_nothing_recorded,
    assert_problem,
)
from tests.support.genai import ROOT
from tests.support.records import count_runs
from tests.support.registry import install_provider_registry


def test_run_is_accepted_recorded_and_enqueued(
    client: FlaskClient, auth: dict[str, str], services: Services, dispatcher: RecordingDispatcher
) -> None:
    # A named credential must be stored (for the pipeline's provider) before a run can use it.
    services.credentials.add("acme", "test", "Main key", {"api_key": "k" * 24}, "main-key")
    body = {"start_date": "2024-03-01", "end_date": "2024-03-02", "credential_id": "main-key"}
    response = client.post(RUN_URL, json=body, headers=auth)

    assert response.status_code == 202
    data = response.get_json()
    run_id = data["run_id"]
    assert data == {
        "run_id": run_id,
        "status": "queued",
        "pipeline_id": "test_demo_basic",
        "links": {
            "status": f"http://api.test/pipelines/status/acme/{run_id}",
            "logs": f"http://api.test/pipelines/logs/acme/{run_id}",
        },
    }
    assert response.headers["Location"] == data["links"]["status"]
    assert [r for r, _ in dispatcher.enqueued] == [run_id]
    plan = dispatcher.enqueued[0][1]
    assert plan.levels == (("extract",), ("noop_a", "noop_b"), ("unify",))
    assert plan.steps["unify"].config["args"]["p_date"] == "2024-03-01"
    run = services.store.get_run(run_id)
    assert run is not None
    assert (run.org_slug, run.credential_id) == ("acme", "main-key")
    assert (run.start_date, run.end_date) == (date(2024, 3, 1), date(2024, 3, 2))


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"data": b"", "content_type": "application/json"},
        {"json": {}},
        {"json": {"start_date": None, "params": {}}},
    ],
    ids=["no-body", "empty-json-body", "empty-object", "nulls"],
)
def test_body_is_optional(
    client: FlaskClient, auth: dict[str, str], services: Services, kwargs: dict[str, object]
) -> None:
    response = client.post(RUN_URL, headers=auth, **kwargs)
    assert response.status_code == 202, response.get_json()
    run = services.store.get_run(response.get_json()["run_id"])
    assert run is not None and run.credential_id == "default"


def test_params_are_stored(client: FlaskClient, auth: dict[str, str], services: Services) -> None:
    params = {"region": "eu", "limit": 5, "ratio": 0.5, "dry_run": True, "note": None}
    response = client.post(RUN_URL, json={"params": params}, headers=auth)
    assert response.status_code == 202
    run = services.store.get_run(response.get_json()["run_id"])
    assert run is not None and run.params == params


def test_pipeline_in_a_category_folder_is_found_by_its_last_three_segments(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    response = client.post("/pipelines/run/acme/generic/demo/single", headers=auth)
    assert response.status_code == 202
    assert response.get_json()["pipeline_id"] == "generic_demo_single"


@pytest.mark.parametrize(
    ("pipeline", "expected"),
    [
        ("malformed", "malformed YAML"),
        ("unknown_type", "unknown ps_type 'generic.does_not_exist'"),
        ("cycle", "cycle"),
        ("unknown_var", "unknown template variable '${yesterday}'"),
    ],
)
def test_invalid_config_is_422_and_records_nothing(
    client: FlaskClient,
    auth: dict[str, str],
    services: Services,
    dispatcher: RecordingDispatcher,
    pipeline: str,
    expected: str,
) -> None:
    response = client.post(f"/pipelines/run/acme/test/bad/{pipeline}", json={}, headers=auth)

    body = assert_problem(response, 422, "invalid_config")
    assert body["errors"], body
    assert all(set(error) == {"step", "message"} for error in body["errors"])
    assert any(expected in error["message"] for error in body["errors"]), body["errors"]
    assert str(services.settings.configs_dir) not in response.get_data(as_text=True)
    assert_nothing_recorded(services, dispatcher)


def test_cycle_error_names_the_step(client: FlaskClient, auth: dict[str, str]) -> None:
    body = client.post("/pipelines/run/acme/test/bad/cycle", headers=auth).get_json()
    assert body["errors"][0]["step"] in ("a", "b")


def test_unknown_pipeline_is_404(
    client: FlaskClient, auth: dict[str, str], services: Services, dispatcher: RecordingDispatcher
) -> None:
    response = client.post("/pipelines/run/acme/test/demo/missing", json={}, headers=auth)
    assert_problem(response, 404, "not_found")
    assert_nothing_recorded(services, dispatcher)


@pytest.mark.parametrize(
    "url",
    [
        "/pipelines/run/acme/../demo/basic",
        "/pipelines/run/acme/%2e%2e/demo/basic",
        "/pipelines/run/acme/test/%2E%2E/basic",
        "/pipelines/run/acme/test/demo/a%2Fb",
        "/pipelines/run/acme/test/demo/..%2f..%2fetc",
        "/pipelines/run/acme/Test/demo/basic",
        "/pipelines/run/ACME/test/demo/basic",
        "/pipelines/run/acme/test/demo/basic.yml",
        "/pipelines/run/acme/test/demo/ba%73ic",
        "/pipelines/run/acme/test/demo/basic%0a",
    ],
)
def test_bad_path_segment_is_400(
    client: FlaskClient,
    auth: dict[str, str],
    services: Services,
    dispatcher: RecordingDispatcher,
    url: str,
) -> None:
    assert_problem(client.post(url, json={}, headers=auth), 400, "invalid_path")
    assert_nothing_recorded(services, dispatcher)


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"data": "hello", "content_type": "text/plain"}, 415, "unsupported_media_type"),
        ({"data": {"start_date": "2024-01-01"}}, 415, "unsupported_media_type"),
        ({"data": '{"start_date": "2024-01-01"}'}, 415, "unsupported_media_type"),
        ({"data": '{"start_date": ', "content_type": "application/json"}, 400, "invalid_json"),
        (
            {"data": '{"params": {"x": NaN}}', "content_type": "application/json"},
            400,
            "invalid_json",
        ),
        ({"data": b"\xff\xfe{", "content_type": "application/json"}, 400, "invalid_json"),
        ({"data": "[1, 2]", "content_type": "application/json"}, 422, "validation_error"),
        ({"data": "null", "content_type": "application/json"}, 422, "validation_error"),
    ],
    ids=["text", "form", "json-as-text", "truncated", "nan", "not-utf8", "array", "null"],
)
def test_bad_body_is_rejected(
    client: FlaskClient,
    auth: dict[str, str],
    services: Services,
    dispatcher: RecordingDispatcher,
    kwargs: dict[str, object],
    status: int,
    code: str,
) -> None:
    assert_problem(client.post(RUN_URL, headers=auth, **kwargs), status, code)
    assert_nothing_recorded(services, dispatcher)


def test_body_over_one_mib_is_413(
    client: FlaskClient, auth: dict[str, str], services: Services, dispatcher: RecordingDispatcher
) -> None:
    padding = "x" * (1024 * 1024)
    data = json.dumps({"params": {"pad": padding}})
    response = client.post(RUN_URL, data=data, content_type="application/json", headers=auth)
    assert_problem(response, 413, "body_too_large")
    assert_nothing_recorded(services, dispatcher)


@pytest.mark.parametrize("size", [1024 * 1024, 3 * 1024 * 1024])
def test_chunked_body_over_one_mib_is_413(
    client: FlaskClient,
    auth: dict[str, str],
    services: Services,
    dispatcher: RecordingDispatcher,
    size: int,
) -> None:
    data = json.dumps({"params": {"pad": "x" * size}}).encode()
    response = client.post(
        RUN_URL,
        input_stream=io.BytesIO(data),
        content_type="application/json",
        headers={**auth, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert_problem(response, 413, "body_too_large")
    assert_nothing_recorded(services, dispatcher)


def test_small_chunked_body_is_read(client: FlaskClient, auth: dict[str, str]) -> None:
    response = client.post(
        RUN_URL,
        input_stream=io.BytesIO(b'{"start_date": "2024-01-01"}'),
        content_type="application/json",
        headers={**auth, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 202, response.get_json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"start_date": "2024-13-01"}, "start_date"),
        ({"start_date": "2024/01/01"}, "start_date"),
        ({"start_date": "20240101"}, "start_date"),
        ({"end_date": "2024-02-30"}, "end_date"),
        ({"start_date": 20240101}, "start_date"),
        ({"start_date": "2024-01-01T00:00:00"}, "start_date"),
        ({"start_date": "2024-03-02", "end_date": "2024-03-01"}, "end_date"),
        ({"start_date": "2023-01-01", "end_date": "2024-12-31"}, "end_date"),
        ({"credential_id": "Bad Cred"}, "credential_id"),
        ({"credential_id": "../x"}, "credential_id"),
        ({"credential_id": "x" * 129}, "credential_id"),
        ({"params": {"nested": {"a": 1}}}, "params"),
        ({"params": {"list": [1]}}, "params"),
        ({"params": {f"k{i}": i for i in range(51)}}, "params"),
        ({"params": {"bad key!": 1}}, "params"),
        ({"params": "x=1"}, "params"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_invalid_fields_are_422(
    client: FlaskClient,
    auth: dict[str, str],
    services: Services,
    dispatcher: RecordingDispatcher,
    body: dict[str, object],
    field: str,
) -> None:
    problem = assert_problem(client.post(RUN_URL, json=body, headers=auth), 422, "validation_error")
    assert field in {error["field"].split(".")[0] for error in problem["errors"]}, problem
    assert_nothing_recorded(services, dispatcher)


def test_fifty_params_are_allowed(client: FlaskClient, auth: dict[str, str]) -> None:
    params = {f"k{i}": i for i in range(50)}
    assert client.post(RUN_URL, json={"params": params}, headers=auth).status_code == 202


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-Key": ""},
        {"X-API-Key": "not-a-key"},
        {"X-API-Key": "po_aaaaaaaaaaaa_" + "b" * 43},
        {"Authorization": "Bearer something"},
    ],
    ids=["missing", "empty", "garbage", "unknown", "wrong-header"],
)
def test_missing_or_unknown_key_is_401(
    client: FlaskClient,
    org_key: str,
    services: Services,
    dispatcher: RecordingDispatcher,
    headers: dict[str, str],
) -> None:
    response = client.post(RUN_URL, json={}, headers=headers)
    assert_problem(response, 401, "unauthorized")
    assert "X-API-Key" in response.headers["WWW-Authenticate"]
    assert_nothing_recorded(services, dispatcher)


def test_wrong_secret_for_a_known_prefix_is_401(client: FlaskClient, org_key: str) -> None:
    tampered = org_key[:-4] + ("aaaa" if not org_key.endswith("aaaa") else "bbbb")
    response = client.post(RUN_URL, headers={"X-API-Key": tampered})
    assert_problem(response, 401, "unauthorized")


def test_other_orgs_key_is_404_like_an_unknown_org(
    client: FlaskClient,
    auth: dict[str, str],
    other_auth: dict[str, str],
    services: Services,
    dispatcher: RecordingDispatcher,
) -> None:
    foreign = client.post(RUN_URL, json={}, headers=other_auth)
    unknown = client.post("/pipelines/run/nosuchorg/test/demo/basic", json={}, headers=auth)
    assert_problem(foreign, 404, "not_found")
    assert foreign.get_json() == unknown.get_json()
    assert_nothing_recorded(services, dispatcher)


@pytest.mark.parametrize(
    ("url", "headers", "kwargs", "status", "code"),
    [
        # key before path: a malformed path without a key is still 401
        ("/pipelines/run/acme/../demo/basic", "none", {}, 401, "unauthorized"),
        # path before org: a malformed path with another org's key is 400
        ("/pipelines/run/acme/BAD/demo/basic", "other", {}, 400, "invalid_path"),
        # org before pipeline: another org's key on a missing pipeline is 404 either way
        ("/pipelines/run/acme/test/demo/missing", "other", {}, 404, "not_found"),
        # pipeline before body: a missing pipeline with a bad body is 404
        ("/pipelines/run/acme/test/demo/missing", "own", {"data": "x"}, 404, "not_found"),
        # config before body fields: an invalid config with a bad date is 422 invalid_config
        (
            "/pipelines/run/acme/test/bad/cycle",
            "own",
            {"json": {"start_date": "nope"}},
            422,
            "validation_error",
        ),
    ],
)
def test_check_order(
    client: FlaskClient,
    auth: dict[str, str],
    other_auth: dict[str, str],
    url: str,
    headers: str,
    kwargs: dict[str, object],
    status: int,
    code: str,
) -> None:
    chosen = {"none": {}, "own": auth, "other": other_auth}[headers]
    assert_problem(client.post(url, headers=chosen, **kwargs), status, code)


def test_duplicate_active_run_is_409_with_the_existing_run_id(
    client: FlaskClient, auth: dict[str, str], services: Services, dispatcher: RecordingDispatcher
) -> None:
    body = {"start_date": "2024-05-01"}
    first = client.post(RUN_URL, json=body, headers=auth).get_json()["run_id"]

    problem = assert_problem(client.post(RUN_URL, json=body, headers=auth), 409, "run_active")

    assert problem["existing_run_id"] == first
    assert count_runs(services.store) == 1
    assert [r for r, _ in dispatcher.enqueued] == [first]


def _app_with_gate(settings: Settings, gate: object) -> tuple[FlaskClient, Services]:
    dispatcher = RecordingDispatcher()
    services = build_services(settings, dispatcher, gate=gate)  # type: ignore[arg-type]
    return create_app(services=services).test_client(), services


class _RefusingGate(AllowAllGate):
    def __init__(self, error: Exception) -> None:
        self.error = error

    def reserve(self, org_slug: str, run_id: str) -> None:
        raise self.error

    def release(self, org_slug: str, run_id: str, succeeded: bool) -> bool:
        return True

    def heartbeat(self, org_slug: str, run_id: str) -> None:
        return None


def test_quota_exceeded_is_429_with_retry_after(
    settings: Settings, services: Services, org_key: str
) -> None:
    error = QuotaExceededError("daily", limit_value=10, current=10, retry_after=3600)
    client, gated = _app_with_gate(settings, _RefusingGate(error))

    response = client.post(RUN_URL, json={}, headers={"X-API-Key": org_key})

    problem = assert_problem(response, 429, "quota_exceeded")
    assert (problem["limit"], problem["limit_value"], problem["current"]) == ("daily", 10, 10)
    assert response.headers["Retry-After"] == "3600"
    assert count_runs(gated.store) == 0


def test_inactive_subscription_is_403(settings: Settings, services: Services, org_key: str) -> None:
    error = SubscriptionInactiveError("subscription is CANCELLED")
    client, gated = _app_with_gate(settings, _RefusingGate(error))

    response = client.post(RUN_URL, headers={"X-API-Key": org_key})

    assert_problem(response, 403, "subscription_inactive")
    assert count_runs(gated.store) == 0


def test_run_failing_validation_after_admission_is_422_with_run_id(
    client: FlaskClient,
    auth: dict[str, str],
    services: Services,
    dispatcher: RecordingDispatcher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken_plan(*args: object, **kwargs: object) -> None:
        raise TemplateError("config.x: unknown template variable '${nope}'")

    monkeypatch.setattr("pipeline.runs.service.build_plan", broken_plan)

    problem = assert_problem(client.post(RUN_URL, headers=auth), 422, "run_validation_failed")

    run = services.store.get_run(problem["run_id"])
    assert run is not None and run.status == "failed"
    assert dispatcher.enqueued == []


def test_broker_down_is_503(settings: Settings, services: Services, org_key: str) -> None:
    class DownDispatcher(RecordingDispatcher):
        def enqueue(self, run_id: str, plan: dict[str, object]) -> None:
            raise ConnectionError("redis://:hunter2secret@broker:6379 refused")

    client = create_app(services=build_services(settings, DownDispatcher())).test_client()

    response = client.post(RUN_URL, headers={"X-API-Key": org_key})

    assert_problem(response, 503, "service_unavailable")
    assert "hunter2secret" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (
            {"start_date": "1999-12-31", "end_date": "2000-01-02"},
            "start_date 1999-12-31 is before 2000-01-01, the earliest date a run may cover",
        ),
        ({"start_date": "2999-01-01"}, "end_date 2999-01-01 is after today ("),
    ],
)
def test_dates_outside_the_bounds_are_422_and_record_nothing(
    client: FlaskClient,
    auth: dict[str, str],
    services: Services,
    dispatcher: RecordingDispatcher,
    body: dict[str, str],
    detail: str,
) -> None:
    problem = assert_problem(client.post(RUN_URL, json=body, headers=auth), 422, "invalid_dates")

    assert problem["detail"].startswith(detail)
    assert_nothing_recorded(services, dispatcher)
    assert dispatcher.enqueued == []


def test_a_provider_that_needs_a_credential_is_422_without_one(
    client: FlaskClient,
    auth: dict[str, str],
    settings: Settings,
    services: Services,
    dispatcher: RecordingDispatcher,
) -> None:
    install_provider_registry(settings.configs_dir)
    pipeline = settings.configs_dir / "cloud" / "aws" / "cost" / "noop.yml"
    pipeline.parent.mkdir(parents=True)
    pipeline.write_text(
        "pipeline_id: aws_noop\nname: n\nprovider: aws\ndomain: cost\n"
        "steps:\n  - step_id: only\n    ps_type: generic.noop\n"
    )

    response = client.post(
        "/pipelines/run/acme/aws/cost/noop", json={"start_date": "2026-01-01"}, headers=auth
    )

    problem = assert_problem(response, 422, "invalid_credential")
    assert problem["detail"].startswith(
        "pipeline cloud/aws/cost/noop needs a credential of provider aws; add one with "
        "`pipeline-ops credentials add --org acme aws --name NAME --file key.json`"
    )
    assert_nothing_recorded(services, dispatcher)
    usage = services.gate.usage("acme")["usage"]
    assert (usage["daily_runs"], usage["concurrent_running"]) == (0, 0)


@pytest.mark.parametrize("provider", ["aws", "azure", "gcp", "oci"])
def test_the_shipped_cloud_billing_pipeline_is_422_without_a_credential(
    provider: str,
    client: FlaskClient,
    auth: dict[str, str],
    settings: Settings,
    services: Services,
    dispatcher: RecordingDispatcher,
) -> None:
    # The pipeline as shipped, not a stand-in: the example a user meets first
    # (configs/cloud/<provider>/cost/billing.yml is addressed as <provider>/cost/billing).
    install_provider_registry(settings.configs_dir)
    shipped = ROOT / "configs" / "cloud" / provider / "cost" / "billing.yml"
    target = settings.configs_dir / "cloud" / provider / "cost" / "billing.yml"
    target.parent.mkdir(parents=True)
    target.write_bytes(shipped.read_bytes())

    response = client.post(
        f"/pipelines/run/acme/{provider}/cost/billing",
        json={"start_date": "2026-01-01"},
        headers=auth,
    )

    problem = assert_problem(response, 422, "invalid_credential")
    assert problem["detail"].startswith(
        f"pipeline cloud/{provider}/cost/billing needs a credential of provider {provider}; "
        f"add one with `pipeline-ops credentials add --org acme {provider} --name NAME"
    )
    assert_nothing_recorded(services, dispatcher)
    assert count_runs(services.store, "acme") == 0
