"""Mapping API path segments to pipeline files."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.definition.catalog import PipelineCatalog
from pipeline_ops_core.errors import ConfigError, NotFoundError


@pytest.fixture
def configs(tmp_path: Path, write) -> Path:
    write("configs/genai/payg/openai.yml")  # no category folder
    write("configs/cloud/gcp/cost/billing.yml")  # with a category folder
    write("configs/system/providers.yml", "openai: {base_url: https://api.openai.com}\n")
    write("configs/system/x/y/z.yml")  # deep under system/: still skipped
    write("configs/README.yml", "not: a pipeline\n")  # too shallow to have a key
    write("configs/gcp/Cost/billing.yml")  # unreachable name: not listed
    return tmp_path / "configs"


def test_keys_use_the_last_three_segments(configs: Path) -> None:
    assert PipelineCatalog(configs).keys() == [
        ("gcp", "cost", "billing"),
        ("genai", "payg", "openai"),
    ]


def test_path_without_category(configs: Path) -> None:
    path = PipelineCatalog(configs).path_for("genai", "payg", "openai")
    assert path == configs / "genai" / "payg" / "openai.yml"


def test_path_with_category(configs: Path) -> None:
    path = PipelineCatalog(configs).path_for("gcp", "cost", "billing")
    assert path == configs / "cloud" / "gcp" / "cost" / "billing.yml"


def test_system_folder_is_skipped(configs: Path) -> None:
    catalog = PipelineCatalog(configs)
    keys = catalog.keys()
    assert keys and all("system" not in key for key in keys)
    with pytest.raises(NotFoundError):
        catalog.path_for("x", "y", "z")


def test_load_returns_the_spec(configs: Path) -> None:
    spec = PipelineCatalog(configs).load("gcp", "cost", "billing")
    assert spec.pipeline_id == "genai_openai_payg"
    assert spec.source == str(configs / "cloud" / "gcp" / "cost" / "billing.yml")


def test_missing_pipeline(configs: Path) -> None:
    with pytest.raises(NotFoundError) as caught:
        PipelineCatalog(configs).path_for("genai", "payg", "anthropic")
    assert str(caught.value) == "pipeline genai/payg/anthropic not found"


@pytest.mark.parametrize(
    "segments",
    [
        ("..", "payg", "openai"),
        ("genai", "..", "openai"),
        ("genai", "payg", ".."),
        ("genai", "payg/openai", "x"),
        ("a/b", "payg", "openai"),
        ("Upper", "payg", "openai"),
        ("genai", "payg", "openai\n"),
        ("genai", "payg", ""),
        ("genai", "payg", "openai.yml"),
        ("..%2f", "payg", "openai"),
    ],
)
def test_bad_segments_are_not_found(configs: Path, segments: tuple[str, str, str]) -> None:
    with pytest.raises(NotFoundError, match=r"(?s)^pipeline .* not found$"):
        PipelineCatalog(configs).path_for(*segments)


def test_traversal_never_reaches_a_real_file_outside(tmp_path: Path, configs: Path) -> None:
    (tmp_path / "secret.yml").write_text("x: 1\n")
    with pytest.raises(NotFoundError):
        PipelineCatalog(configs / "genai" / "payg").path_for("..", "..", "secret")


def test_duplicates_detected(configs: Path, write) -> None:
    write("configs/other/genai/payg/openai.yml")
    catalog = PipelineCatalog(configs)
    assert catalog.duplicates() == [
        (
            ("genai", "payg", "openai"),
            [
                configs / "genai" / "payg" / "openai.yml",
                configs / "other" / "genai" / "payg" / "openai.yml",
            ],
        )
    ]
    with pytest.raises(ConfigError, match="pipeline genai/payg/openai is ambiguous"):
        catalog.path_for("genai", "payg", "openai")


def test_scan_is_cached_until_refresh(configs: Path, write) -> None:
    catalog = PipelineCatalog(configs)
    key = ("aws", "cost", "cur")
    before = catalog.keys()
    write("configs/cloud/aws/cost/cur.yml")
    cached = catalog.keys()
    catalog.refresh()
    after = catalog.keys()
    assert key not in before and key not in cached and key in after
    assert catalog.path_for("aws", "cost", "cur") == configs / "cloud" / "aws" / "cost" / "cur.yml"


def test_missing_configs_dir_is_empty(tmp_path: Path) -> None:
    catalog = PipelineCatalog(tmp_path / "nowhere")
    assert catalog.keys() == []
    assert catalog.duplicates() == []
