"""Parsing a pipeline file: the valid shape, and one test per rejection."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.definition.config import (
    MAX_FILE_BYTES,
    PipelineSpec,
    RetryPolicy,
    StepSpec,
    load_pipeline,
    parse_pipeline,
)
from pipeline_ops_core.errors import ConfigError, NotFoundError


def problems_of(text: str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        parse_pipeline(text, "p.yml")
    return caught.value.problems


def only_problem(text: str) -> tuple[str, str]:
    problems = problems_of(text)
    assert len(problems) == 1, problems
    return problems[0]


# --- the valid file -------------------------------------------------------------------


def test_valid_pipeline_parses_every_field(yml) -> None:
    spec = parse_pipeline(yml.valid, "configs/genai/payg/openai.yml")

    assert isinstance(spec, PipelineSpec)
    assert spec.pipeline_id == "genai_openai_payg"
    assert spec.name == "OpenAI pay-as-you-go usage and cost"
    assert spec.description == "Pulls usage, prices it, unifies it."
    assert (spec.provider, spec.domain) == ("openai", "payg")
    assert spec.version == "1.2.0"
    assert spec.schedule == "0 3 * * *"
    assert spec.source == "configs/genai/payg/openai.yml"
    assert [s.step_id for s in spec.steps] == [
        "extract_usage",
        "extract_models",
        "calculate",
        "unify",
    ]


def test_valid_pipeline_step_fields_and_defaults(yml) -> None:
    spec = parse_pipeline(yml.valid, "p.yml")

    usage = spec.step("extract_usage")
    assert usage.ps_type == "generic.http_extract"
    assert usage.timeout_seconds == 900
    assert usage.retry == RetryPolicy(max_attempts=5, backoff_seconds=10.0)
    # Templates are kept as written; resolution happens per run.
    assert usage.config["url"] == (
        "https://usage.example.com/v1?start=${start_date}&dataset={org_slug}_prod"
    )

    models = spec.step("extract_models")
    assert models.depends_on == ()
    assert models.timeout_seconds == 600
    assert models.retry == RetryPolicy(max_attempts=3, backoff_seconds=30.0)
    assert models.description == ""

    calculate = spec.step("calculate")
    assert calculate.depends_on == ("extract_usage", "extract_models")
    assert calculate.config == {}
    assert calculate.description == "joins usage with prices"

    unify = spec.step("unify")
    assert unify.config["args"]["p_run"] == ["${run_id}", 3]


def test_optional_top_level_fields_default(yml) -> None:
    spec = parse_pipeline(yml.pipeline(yml.step()), "p.yml")
    assert spec.description == ""
    assert spec.version is None
    assert spec.schedule is None
    assert spec.steps == (StepSpec(step_id="only", ps_type="generic.noop"),)


def test_dates_stay_strings(yml) -> None:
    # YAML 1.1 would turn 2024-01-01 into a date; configs must stay JSON-safe.
    spec = parse_pipeline(yml.pipeline(yml.step("config: {day: 2024-01-01}")), "p.yml")
    assert spec.steps[0].config == {"day": "2024-01-01"}


def test_spec_is_frozen(yml) -> None:
    spec = parse_pipeline(yml.valid, "p.yml")
    with pytest.raises(AttributeError):
        spec.name = "other"  # type: ignore[misc]


def test_step_lookup_of_missing_step_raises_not_found(yml) -> None:
    spec = parse_pipeline(yml.valid, "p.yml")
    with pytest.raises(NotFoundError, match="step 'nope' not in pipeline genai_openai_payg"):
        spec.step("nope")


def test_load_pipeline_reads_file(write) -> None:
    path = write("configs/genai/payg/openai.yml")
    spec = load_pipeline(path)
    assert spec.pipeline_id == "genai_openai_payg"
    assert spec.source == str(path)


# --- unknown keys ---------------------------------------------------------------------


def test_unknown_top_level_key(yml) -> None:
    assert only_problem(yml.pipeline(yml.step(), owner="me")) == ("-", "owner: Unknown field.")


def test_unknown_step_key(yml) -> None:
    problem = only_problem(yml.pipeline(yml.step("retries: 3")))
    assert problem == ("only", "retries: Unknown field.")


def test_unknown_retry_key(yml) -> None:
    problem = only_problem(yml.pipeline(yml.step("retry: {max_attempts: 2, jitter: true}")))
    assert problem == ("only", "retry.jitter: Unknown field.")


# --- required fields and identifiers ---------------------------------------------------


def test_missing_step_id_points_at_the_step_position(yml) -> None:
    steps = yml.step() + "- ps_type: generic.noop\n"
    problem = only_problem(yml.pipeline(steps))
    assert problem == ("-", "steps[1].step_id: Missing data for required field.")


def test_missing_required_top_level_fields_are_all_reported() -> None:
    problems = problems_of("name: x\n")
    assert ("-", "pipeline_id: Missing data for required field.") in problems
    assert ("-", "provider: Missing data for required field.") in problems
    assert ("-", "domain: Missing data for required field.") in problems
    assert ("-", "steps: Missing data for required field.") in problems


def test_empty_steps_list(yml) -> None:
    text = yml.pipeline("").replace("steps:\n", "steps: []\n")
    assert only_problem(text) == ("-", "steps: must list at least one step")


@pytest.mark.parametrize("field", ["pipeline_id", "provider", "domain"])
def test_identifiers_must_be_lowercase_snake(field: str, yml) -> None:
    problem = only_problem(yml.pipeline(yml.step(), **{field: "Bad-Name"}))
    assert problem == ("-", f"{field}: must match ^[a-z0-9_]+$")


def test_step_id_must_be_lowercase_snake(yml) -> None:
    problem = only_problem(yml.pipeline("- step_id: Extract\n  ps_type: generic.noop\n"))
    assert problem == ("Extract", "step_id: must match ^[a-z0-9_]+$")


def test_accepts_future_dates_must_be_true_or_false(yml) -> None:
    assert parse_pipeline(yml.pipeline(yml.step()), "p.yml").accepts_future_dates is False
    yes = parse_pipeline(yml.pipeline(yml.step(), accepts_future_dates="true"), "p.yml")
    assert yes.accepts_future_dates is True
    for written in ('"true"', "1", "sometimes"):
        problem = only_problem(yml.pipeline(yml.step(), accepts_future_dates=written))
        assert problem == ("-", "accepts_future_dates: Not a valid boolean."), written


def test_version_must_be_a_string(yml) -> None:
    problem = only_problem(yml.pipeline(yml.step(), version="1.2"))
    assert problem == ("-", "version: Not a valid string.")


# --- cross-step checks ----------------------------------------------------------------


def test_duplicate_step_ids(yml) -> None:
    steps = yml.step() + yml.step()
    assert only_problem(yml.pipeline(steps)) == ("only", "duplicate step_id 'only'")


def test_unknown_ps_type_lists_known_types(yml) -> None:
    text = yml.pipeline("- step_id: a\n  ps_type: genai.nope\n")
    step, message = only_problem(text)
    assert step == "a"
    assert message.startswith("ps_type: unknown ps_type 'genai.nope' (known: ")
    assert "generic.noop" in message


def test_depends_on_missing_step(yml) -> None:
    problem = only_problem(yml.pipeline(yml.step("depends_on: [ghost]")))
    assert problem == ("only", "depends on missing step 'ghost'")


def test_cycle_names_every_step_in_it(yml) -> None:
    steps = """\
    - step_id: a
      ps_type: generic.noop
      depends_on: [c]
    - step_id: b
      ps_type: generic.noop
      depends_on: [a]
    - step_id: c
      ps_type: generic.noop
      depends_on: [b]
    - step_id: outside
      ps_type: generic.noop
      depends_on: [a]
    """
    assert only_problem(yml.pipeline(steps)) == ("a", "dependency cycle: a -> b -> c -> a")


def test_self_dependency_is_a_cycle(yml) -> None:
    problem = only_problem(yml.pipeline(yml.step("depends_on: [only]")))
    assert problem == ("only", "dependency cycle: only -> only")


def test_unknown_template_variable(yml) -> None:
    problem = only_problem(yml.pipeline(yml.step('config: {args: {d: "from ${foo}"}}')))
    assert problem == ("only", "config.args.d: unknown template variable '${foo}'")


def test_template_in_list_inside_config(yml) -> None:
    problem = only_problem(yml.pipeline(yml.step('config: {dates: ["${start_date}", "${bar}"]}')))
    assert problem == ("only", "config.dates[1]: unknown template variable '${bar}'")


# --- schedule, timeouts, retries ------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("0 3 * *", "schedule: bad cron '0 3 * *': expected 5 fields (min hour day month dow)"),
        (
            "0 0 3 * * *",
            "schedule: bad cron '0 0 3 * * *': expected 5 fields (min hour day month dow)",
        ),
        ("61 3 * * *", "schedule: bad cron '61 3 * * *'"),
        ("every day", "schedule: bad cron 'every day': expected 5 fields (min hour day month dow)"),
    ],
)
def test_bad_cron(cron: str, message: str, yml) -> None:
    assert only_problem(yml.pipeline(yml.step(), schedule=f'"{cron}"')) == ("-", message)


@pytest.mark.parametrize("timeout", [0, 100000])
def test_timeout_out_of_range(timeout: int, yml) -> None:
    problem = only_problem(yml.pipeline(yml.step(f"timeout_seconds: {timeout}")))
    assert problem == (
        "only",
        "timeout_seconds: Must be greater than or equal to 1 and less than or equal to 86400.",
    )


def test_timeout_must_be_an_integer_not_a_string(yml) -> None:
    problem = only_problem(yml.pipeline(yml.step('timeout_seconds: "600"')))
    assert problem == ("only", "timeout_seconds: Not a valid integer.")


@pytest.mark.parametrize("attempts", [0, 11])
def test_max_attempts_out_of_range(attempts: int, yml) -> None:
    problem = only_problem(yml.pipeline(yml.step(f"retry: {{max_attempts: {attempts}}}")))
    assert problem == (
        "only",
        "retry.max_attempts: Must be greater than or equal to 1 and less than or equal to 10.",
    )


def test_negative_backoff(yml) -> None:
    problem = only_problem(yml.pipeline(yml.step("retry: {backoff_seconds: -1}")))
    assert problem == (
        "only",
        "retry.backoff_seconds: Must be greater than or equal to 0 and less than or equal to 3600.",
    )


def test_retry_accepts_partial_policy_and_float_backoff(yml) -> None:
    spec = parse_pipeline(yml.pipeline(yml.step("retry: {backoff_seconds: 2.5}")), "p.yml")
    assert spec.steps[0].retry == RetryPolicy(max_attempts=3, backoff_seconds=2.5)


# --- all problems at once -------------------------------------------------------------


def test_all_problems_are_collected_in_file_order(yml) -> None:
    steps = """\
    - step_id: a
      ps_type: generic.nope
      timeout_seconds: 0
    - step_id: b
      ps_type: generic.noop
      depends_on: [ghost]
      config: {x: "${foo}"}
    - step_id: b
      ps_type: generic.noop
    """
    with pytest.raises(ConfigError) as caught:
        parse_pipeline(yml.pipeline(steps, owner="me"), "p.yml")
    problems = caught.value.problems
    assert [step for step, _ in problems] == ["-", "a", "a", "b", "b", "b"]
    assert problems[0] == ("-", "owner: Unknown field.")
    assert problems[3] == ("b", "config.x: unknown template variable '${foo}'")
    assert problems[4] == ("b", "depends on missing step 'ghost'")
    assert problems[5] == ("b", "duplicate step_id 'b'")
    assert str(caught.value).startswith("p.yml: 6 problems: -: owner: Unknown field.; a: ")


# --- YAML safety ----------------------------------------------------------------------


def test_malformed_yaml_reports_the_line() -> None:
    text = "pipeline_id: x\nname: y\nsteps: [a, b\nprovider: z\n"
    step, message = only_problem(text)
    assert step == "-"
    assert message.startswith("malformed YAML at line 4: ")


def test_billion_laughs_is_rejected_before_expansion() -> None:
    bomb = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        bomb += f"{level}: &{level} [" + ", ".join([f"*{previous}"] * 9) + "]\n"
    assert only_problem(bomb) == ("-", "YAML aliases are not allowed (anchor &a) at line 1")


def test_alias_alone_is_rejected() -> None:
    assert only_problem("name: *x\n") == ("-", "YAML aliases are not allowed (alias *x) at line 1")


def test_python_object_tag_is_rejected(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f'pipeline_id: !!python/object/apply:os.system ["touch {marker}"]\n'
    problem = only_problem(text)
    assert problem == ("-", "unsupported YAML tag '!!python/object/apply:os.system' at line 1")
    assert not marker.exists()


def test_custom_local_tag_is_rejected() -> None:
    assert only_problem("name: !env HOME\n") == ("-", "unsupported YAML tag '!env' at line 1")


def test_duplicate_yaml_key_is_rejected(yml) -> None:
    text = yml.pipeline(yml.step()) + "name: again\n"
    step, message = only_problem(text)
    assert (step, message.split(" at line")[0]) == ("-", "duplicate key 'name'")


def test_oversized_text_is_rejected(yml) -> None:
    text = yml.pipeline(yml.step(), description='"' + "x" * MAX_FILE_BYTES + '"')
    assert only_problem(text) == ("-", "file is larger than 256 KiB")


def test_oversized_file_is_rejected_by_load(write) -> None:
    path = write("big.yml", "# " + "x" * (MAX_FILE_BYTES + 10) + "\n")
    with pytest.raises(ConfigError) as caught:
        load_pipeline(path)
    assert caught.value.problems == [("-", "file is larger than 256 KiB")]
    assert str(caught.value) == f"{path}: file is larger than 256 KiB"


@pytest.mark.parametrize(
    ("text", "kind"),
    [("- a\n- b\n", "list"), ("just text\n", "str"), ("", "an empty document"), ("42\n", "int")],
)
def test_top_level_must_be_a_mapping(text: str, kind: str) -> None:
    assert only_problem(text) == ("-", f"top level must be a mapping, got {kind}")


def test_deeply_nested_yaml_is_a_config_error() -> None:
    text = "name: " + "[" * 20000 + "]" * 20000 + "\n"
    step, message = only_problem(text)
    assert (step, message) == ("-", "malformed YAML: nesting is too deep")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_pipeline(tmp_path / "absent.yml")
    assert caught.value.problems == [("-", "cannot read file: No such file or directory")]


def test_non_utf8_file_is_a_config_error(write, tmp_path: Path) -> None:
    path = tmp_path / "latin.yml"
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ConfigError) as caught:
        load_pipeline(path)
    assert caught.value.problems == [("-", "file is not UTF-8 (byte 9)")]
