"""`validate_paths`: what `pipeline-ops validate` prints."""

from __future__ import annotations

from pathlib import Path

from pipeline.definition.validate import Problem, validate_paths


def test_problem_str_format() -> None:
    assert str(Problem("configs/a/b/c.yml", "extract", "bad")) == "configs/a/b/c.yml: extract: bad"


def test_valid_tree_has_no_problems(tmp_path: Path, write) -> None:
    write("configs/genai/payg/openai.yml")
    write("configs/cloud/gcp/cost/billing.yml")
    write("configs/system/providers.yml", "openai: {base_url: https://api.openai.com}\n")
    assert validate_paths([tmp_path / "configs"]) == []


def test_every_problem_is_a_line(tmp_path: Path, write, yml) -> None:
    bad = write(
        "configs/genai/payg/broken.yml", yml.pipeline(yml.step("timeout_seconds: 0"), x="1")
    )
    write("configs/genai/payg/openai.yml")
    lines = [str(p) for p in validate_paths([tmp_path / "configs"])]
    assert lines == [
        f"{bad}: -: x: Unknown field.",
        f"{bad}: only: timeout_seconds: Must be greater than or equal to 1 and less than or "
        "equal to 86400.",
    ]


def test_directories_are_recursive_and_take_yaml_suffix(tmp_path: Path, write) -> None:
    write("configs/a/b/c.yaml", "- not a mapping\n")
    write("configs/a/b/notes.txt", "ignored\n")
    problems = validate_paths([tmp_path / "configs"])
    assert problems == [
        Problem(str(tmp_path / "configs/a/b/c.yaml"), "-", "top level must be a mapping, got list")
    ]


def test_system_under_a_configs_root_is_skipped(tmp_path: Path, write) -> None:
    write("repo/configs/system/providers.yml", "anything: 1\n")
    write("repo/configs/genai/payg/openai.yml")
    # Walking from above the configs folder, and a shell glob naming the file itself.
    assert validate_paths([tmp_path / "repo"]) == []
    assert validate_paths([tmp_path / "repo/configs/system/providers.yml"]) == []


def test_system_deeper_down_is_a_pipeline_folder(tmp_path: Path, write) -> None:
    path = write("configs/vendor/system/cost.yml", "oops: 1\n")
    problems = validate_paths([tmp_path / "configs"])
    assert Problem(str(path), "-", "oops: Unknown field.") in problems


def test_duplicate_keys_across_categories(tmp_path: Path, write) -> None:
    first = write("configs/gcp/cost/billing.yml")
    second = write("configs/cloud/gcp/cost/billing.yml")
    lines = [str(p) for p in validate_paths([tmp_path / "configs"])]
    assert lines == [
        f"{second}: -: duplicate pipeline key gcp/cost/billing also in {first}",
        f"{first}: -: duplicate pipeline key gcp/cost/billing also in {second}",
    ]


def test_duplicates_among_files_given_one_by_one(tmp_path: Path, write) -> None:
    first = write("x/gcp/cost/billing.yml")
    second = write("y/gcp/cost/billing.yml")
    problems = validate_paths([first, second])
    assert [p.file for p in problems] == [str(first), str(second)]
    assert problems[0].message == f"duplicate pipeline key gcp/cost/billing also in {second}"


def test_same_file_given_twice_is_checked_once(write) -> None:
    path = write("configs/genai/payg/openai.yml")
    assert validate_paths([path, path, path.parent]) == []


def test_missing_path_and_wrong_suffix(tmp_path: Path, write) -> None:
    text = write("configs/readme.md", "# hi\n")
    problems = validate_paths([tmp_path / "absent", text])
    assert [str(p) for p in problems] == [
        f"{tmp_path / 'absent'}: -: no such file or directory",
        f"{text}: -: not a .yml or .yaml file",
    ]


def test_yaml_attacks_are_reported_not_raised(tmp_path: Path, write) -> None:
    bomb = write("configs/a/b/bomb.yml", 'a: &a ["x"]\nb: [*a, *a]\n')
    tag = write("configs/a/b/tag.yml", "a: !!python/object/apply:os.system [id]\n")
    lines = [str(p) for p in validate_paths([tmp_path / "configs"])]
    assert lines == [
        f"{bomb}: -: YAML aliases are not allowed (anchor &a) at line 1",
        f"{tag}: -: unsupported YAML tag '!!python/object/apply:os.system' at line 1",
    ]
