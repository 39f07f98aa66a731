"""deploy/prometheus/alerts.yml: valid rule-file structure, the four starter alerts, and
every metric an expression names is one GET /metrics exposes (promtool is not available
offline, so the structure is checked here and the names against a real scrape)."""

from __future__ import annotations

import re
from pathlib import Path

import fakeredis
import pytest
import yaml
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[4]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
DURATION = re.compile(r"^\d+[smhdw]$")
METRIC = re.compile(r"\bpipeline_ops_[a-z0-9_]+\b")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def _rules() -> list[dict]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def _exposed(client: FlaskClient) -> set[str]:
    text = client.get("/metrics").get_data(as_text=True)
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


def test_rule_file_structure() -> None:
    document = yaml.safe_load(RULES.read_text())
    assert set(document) == {"groups"}
    for group in document["groups"]:
        assert group["name"] and group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule["alert"])
            assert DURATION.match(rule["for"]), rule["for"]
            assert rule["labels"]["severity"] in ("warning", "critical")
            assert rule["expr"].count("(") == rule["expr"].count(")")


def test_the_four_starter_alerts_say_what_the_runbook_says() -> None:
    by_name = {rule["alert"]: rule for rule in _rules()}
    stale = by_name["PipelineOpsPipelineNotSuccessful"]["expr"]
    assert "pipeline_ops_last_success_timestamp_seconds" in stale and "26 * 3600" in stale
    beat = by_name["PipelineOpsBeatDown"]["expr"]
    assert "pipeline_ops_beat_heartbeat_age_seconds > 180" in beat and "absent(" in beat
    backlog = by_name["PipelineOpsQueueBacklog"]
    assert "pipeline_ops_queue_depth >" in backlog["expr"] and backlog["for"] == "10m"
    errors = by_name["PipelineOpsHighErrorRate"]["expr"]
    assert 'status=~"5.."' in errors and "pipeline_ops_http_requests_total" in errors


def test_every_metric_an_alert_names_is_exposed(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = fakeredis.FakeServer()
    monkeypatch.setattr("app.api.metrics._redis", lambda svc: fakeredis.FakeRedis(server=server))
    exposed = _exposed(client)

    named = {m for rule in _rules() for m in METRIC.findall(rule["expr"])}
    assert named, "no metric named in the rules"
    assert named <= exposed, f"not exposed by /metrics: {sorted(named - exposed)}"
