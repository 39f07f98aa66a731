"""GET /metrics against a real worker and redis-server, parsed with prometheus_client's
own parser: names and types follow Prometheus conventions, counters only grow across
runs, the last-success timestamp moves with each completed run, HTTP requests are
counted by route (the URL rule, never an org slug or a run id), and the worker's
heartbeat age is there."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from app import create_app
from pipeline.runs.service import RunRequest
from pipeline.storage.records import RunRecord
from tests.integration.conftest import Stack, make_stack, write_pipeline
from tests.support.servers import Server

ORG = "scraped"
NOOP = """\
pipeline_id: test_metrics_noop
name: Does nothing, quickly
provider: metrics
domain: test
steps:
  - step_id: work
    ps_type: generic.noop
"""
EXPECTED_TYPES = {
    "pipeline_ops_runs": "counter",
    "pipeline_ops_runs_active": "gauge",
    "pipeline_ops_last_success_timestamp_seconds": "gauge",
    "pipeline_ops_step_duration_seconds": "histogram",
    "pipeline_ops_schedule_dispatches": "counter",
    "pipeline_ops_queue_depth": "gauge",
    "pipeline_ops_quota_rejections": "counter",
    "pipeline_ops_warehouse_lock_wait_seconds": "histogram",
    "pipeline_ops_worker_heartbeat_age_seconds": "gauge",
    "pipeline_ops_beat_heartbeat_age_seconds": "gauge",
    "pipeline_ops_http_requests": "counter",
    "pipeline_ops_http_request_duration_seconds": "histogram",
    "pipeline_ops_metrics_source_up": "gauge",
}


@pytest.fixture(scope="module")
def metered(
    tmp_path_factory: pytest.TempPathFactory, redis_server: Server, test_configs_dir: Path
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("metrics")
    built, stop = make_stack(
        "sqlite",
        tmp,
        redis_server,
        None,
        test_configs_dir,
        extra_env={"PIPELINE_OPS_METRICS_CACHE_SECONDS": "0"},
    )
    write_pipeline(built, "metrics/test/noop", NOOP)
    built.services.orgs.create(ORG)
    yield built
    stop()


def scrape(client: FlaskClient) -> dict[str, Metric]:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {f.name: f for f in text_string_to_metric_families(response.get_data(as_text=True))}


def samples(families: dict[str, Metric]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in families.values()
        if f.type in ("counter", "histogram")
        for s in f.samples
    }


def run_day(stack: Stack, day: int) -> RunRecord:
    request = RunRequest(ORG, "metrics", "test", "noop", date(2026, 2, day), date(2026, 2, day))
    run = stack.wait(stack.services.runs.start(request).run_id)
    assert run.status == "completed", run
    return run


def test_scrape_follows_conventions_and_counters_only_grow(metered: Stack) -> None:
    client = create_app(services=metered.services).test_client()
    first_run = run_day(metered, 1)
    status_url = f"/pipelines/status/{ORG}/{first_run.run_id}"
    assert client.get(status_url).status_code == 401  # no key: still a request to count
    assert client.get("/health/live").status_code == 200

    before = scrape(client)

    for name, kind in EXPECTED_TYPES.items():
        assert name in before, f"{name} missing from the scrape"
        assert before[name].type == kind, (name, before[name].type)
    for family in before.values():
        assert family.name.startswith("pipeline_ops_")
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples)
    up = {s.labels["source"]: s.value for s in before["pipeline_ops_metrics_source_up"].samples}
    assert up == {"database": 1.0, "redis": 1.0}
    runs = before["pipeline_ops_runs"].samples
    assert [
        s.value
        for s in runs
        if s.labels == {"status": "completed", "pipeline_id": "test_metrics_noop"}
    ] == [1.0]
    stamps = {
        (s.labels["org"], s.labels["pipeline"]): s.value
        for s in before["pipeline_ops_last_success_timestamp_seconds"].samples
    }
    first_success = stamps[(ORG, "test_metrics_noop")]
    assert abs(first_success - time.time()) < 120
    routes = {
        (s.labels["route"], s.labels["method"], s.labels["status"]): s.value
        for s in before["pipeline_ops_http_requests"].samples
    }
    assert routes[("/pipelines/status/<org>/<run_id>", "GET", "401")] == 1.0
    assert routes[("/health/live", "GET", "200")] == 1.0
    text = client.get("/metrics").get_data(as_text=True)
    assert first_run.run_id not in text and f'"{ORG}"' not in text.replace(
        f'org="{ORG}"', ""
    )  # the org appears as the freshness label only, never inside a route
    workers = before["pipeline_ops_worker_heartbeat_age_seconds"].samples
    assert [s.labels["worker"] for s in workers] and all(s.value < 60 for s in workers)

    time.sleep(1.1)  # the next completion is a visibly later second
    run_day(metered, 2)
    run_day(metered, 3)
    after = scrape(client)

    grown = samples(after)
    for key, value in samples(before).items():
        assert grown.get(key, 0.0) >= value, f"{key} went down: {value} -> {grown.get(key)}"
    completed = {
        s.labels["pipeline_id"]: s.value
        for s in after["pipeline_ops_runs"].samples
        if s.labels["status"] == "completed"
    }
    assert completed["test_metrics_noop"] == 3.0
    step_count = {
        s.labels["status"]: s.value
        for s in after["pipeline_ops_step_duration_seconds"].samples
        if s.name.endswith("_count")
    }
    assert step_count["completed"] >= 3.0
    later = {
        (s.labels["org"], s.labels["pipeline"]): s.value
        for s in after["pipeline_ops_last_success_timestamp_seconds"].samples
    }[(ORG, "test_metrics_noop")]
    assert later > first_success
    assert not after["pipeline_ops_runs_active"].samples  # nothing left running


def test_the_page_is_reused_for_the_cache_window(metered: Stack) -> None:
    from dataclasses import replace

    from pipeline.bootstrap import build_services
    from tests.support.doubles import NullDispatcher

    cached = build_services(replace(metered.settings, metrics_cache_seconds=3600), NullDispatcher())
    client = create_app(services=cached).test_client()
    first = client.get("/metrics").get_data(as_text=True)
    run_day(metered, 4)

    assert client.get("/metrics").get_data(as_text=True) == first
