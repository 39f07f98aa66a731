"""The provider registry: parsing, `validate` checks against it, and `pipeline-ops providers`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli import main
from pipeline.definition.validate import validate_paths
from processors.providers import REGISTRY_PATH, load_registry, parse_registry

ROOT = Path(__file__).resolve().parents[4]


def test_the_shipped_registry_and_configs_are_valid() -> None:
    registry = load_registry()
    assert {"openai", "anthropic", "gemini", "deepseek", "subscription"} <= set(registry)
    assert registry["openai"].api_base_url == "https://api.openai.com/v1"
    assert validate_paths([ROOT / "configs"]) == []


def test_registry_entry_problems() -> None:
    raw = {
        "providers": [
            {"key": "ok", "display_name": "OK", "domains": ["payg"], "credential_type": "none"},
            {"key": "Bad Key", "display_name": "", "domains": [], "credential_type": "none",
             "api_base_url": "ftp://x", "default_pipelines": ["not-a-path"], "extra": 1},
            {"key": "ok", "display_name": "Again", "domains": ["payg"], "credential_type": "none"},
        ]
    }  # fmt: skip
    providers, problems = parse_registry(raw)
    assert list(providers) == ["ok"]
    text = "\n".join(problems)
    for expected in ("unknown field 'extra'", "key must match", "display_name", "domains",
                     "api_base_url", "default_pipelines", "duplicate key 'ok'"):  # fmt: skip
        assert expected in text
    assert parse_registry(["not", "a", "mapping"])[1]


@pytest.fixture
def configs(tmp_path: Path) -> Path:
    target = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", target)
    return target


def test_validate_checks_pipelines_against_the_registry(configs: Path) -> None:
    text = (configs / "genai/payg/openai.yml").read_text()
    (configs / "genai/payg/openai.yml").write_text(
        text.replace("provider: openai\ndomain: payg", "provider: openia\ndomain: payg").replace(
            "      provider: openai\n", "      provider: nobody\n"
        )
    )
    (configs / "genai/payg/deepseek.yml").unlink()  # a default pipeline that no longer exists
    problems = [str(p) for p in validate_paths([configs])]
    assert any("provider 'openia' is not in providers.yml" in p for p in problems)
    assert any("extract: config.provider 'nobody' is not in providers.yml" in p for p in problems)
    assert any("default pipeline genai/payg/deepseek has no pipeline file" in p for p in problems)


def test_wrong_domain_is_reported(configs: Path) -> None:
    path = configs / "genai/payg/gemini.yml"
    path.write_text(path.read_text().replace("domain: payg", "domain: billing"))
    problems = [str(p) for p in validate_paths([configs])]
    assert problems == [f"{path}: -: domain 'billing' is not one of gemini's: payg"]


def test_providers_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE_OPS_CONFIGS_DIR", str(REGISTRY_PATH.parent.parent))
    listed = CliRunner().invoke(main, ["providers"])
    assert listed.exit_code == 0, listed.output
    assert (
        "anthropic" in listed.output
        and "https://api.anthropic.com/v1/organizations" in listed.output
    )
    as_json = json.loads(CliRunner().invoke(main, ["providers", "--json"]).output)
    assert {p["key"] for p in as_json} >= {"openai", "deepseek"}
    openai = next(p for p in as_json if p["key"] == "openai")
    assert openai["default_pipelines"] == ["genai/payg/openai"]
    assert openai["credential_required"] is True
    assert openai["credential"]["fields"]["admin_key"]["secret"] is True
    assert openai["credential"]["fields"]["base_url"]["url"] is True
    assert openai["credential"]["fields"]["base_url"]["hosts"] == ["api.openai.com"]
    assert "credential (required): admin_key [secret]" in listed.output
