"""`pipeline-ops schema`: the JSON Schema editors use accepts every shipped pipeline file
and refuses broken ones, checked with the jsonschema library."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from app.cli import main
from pipeline.definition.catalog import iter_pipeline_files
from tests.support.genai import ROOT
from tests.unit.app.api.test_step_config_problems import CASES, pipeline_text

SHIPPED = sorted(iter_pipeline_files(ROOT / "configs")) + sorted(
    iter_pipeline_files(ROOT / "tests" / "integration" / "pipelines")
)


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_there_are_shipped_files() -> None:
    assert len(SHIPPED) >= 12  # the glob found the configs, not nothing


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_pipeline_file_validates(
    validator: jsonschema.protocols.Validator, path: Path
) -> None:
    errors = [e.message for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
    assert errors == []


@pytest.mark.parametrize(
    ("case", "ps_type", "config"),
    [c[:3] for c in CASES if c[0] not in ("template_in_table",)],
    ids=[c[0] for c in CASES if c[0] not in ("template_in_table",)],
)
def test_broken_step_configs_fail_the_json_schema_too(
    validator: jsonschema.protocols.Validator, case: str, ps_type: str, config: str
) -> None:
    # (A template where none is accepted is `validate`'s to catch: any string is text.)
    document = yaml.safe_load(pipeline_text(case, ps_type, config))
    assert list(validator.iter_errors(document)), case


def test_output_file(tmp_path: Path) -> None:
    target = tmp_path / "pipeline.schema.json"
    result = CliRunner().invoke(main, ["schema", "--output", str(target)])
    assert result.exit_code == 0 and f"wrote {target}" in result.output
    assert json.loads(target.read_text())["$ref"] == "#/$defs/Pipeline"
