"""Template variables: both forms, nesting, strictness, and no interpretation of values."""

from __future__ import annotations

import pytest

from pipeline.definition.templates import VARIABLES, find_unknown_at, resolve
from pipeline_ops_core.errors import ConfigError, TemplateError

VALUES = {
    "org_slug": "acme",
    "project_id": "proj-1",
    "org_dataset": "acme_prod",
    "start_date": "2024-05-01",
    "end_date": "2024-05-02",
    "credential_id": "cred_1",
    "pipeline_id": "genai_openai_payg",
    "run_id": "run_123",
}


def test_variables_are_the_documented_set() -> None:
    assert set(VARIABLES) == set(VALUES)


def test_both_forms_of_org_slug() -> None:
    assert resolve("{org_slug}/${org_slug}", VALUES) == "acme/acme"


@pytest.mark.parametrize("name", VARIABLES)
def test_every_variable_resolves(name: str) -> None:
    assert resolve(f"<${{{name}}}>", VALUES) == f"<{VALUES[name]}>"


def test_nested_structures_resolve_and_are_copied() -> None:
    config = {
        "table": "{org_slug}_raw",
        "args": {"p_date": "${start_date}", "p_list": ["${end_date}", 7, None, True]},
        "limit": 10,
        "ratio": 1.5,
    }
    resolved = resolve(config, VALUES)
    assert resolved == {
        "table": "acme_raw",
        "args": {"p_date": "2024-05-01", "p_list": ["2024-05-02", 7, None, True]},
        "limit": 10,
        "ratio": 1.5,
    }
    assert config["args"]["p_date"] == "${start_date}"  # the input is untouched


def test_non_string_scalars_pass_through() -> None:
    for value in (3, 2.5, None, False):
        assert resolve(value, {}) is value


def test_dict_keys_are_not_templates() -> None:
    assert resolve({"${run_id}": "${run_id}"}, VALUES) == {"${run_id}": "run_123"}


def test_unknown_variable_raises_naming_it() -> None:
    with pytest.raises(TemplateError) as caught:
        resolve({"a": ["x ${foo} y"]}, VALUES)
    assert str(caught.value) == "unknown template variable '${foo}'"
    assert isinstance(caught.value, ConfigError)


def test_known_variable_without_a_value_raises() -> None:
    with pytest.raises(TemplateError, match="template variable 'end_date' has no value"):
        resolve("${start_date}..${end_date}", {"start_date": "2024-05-01"})


def test_all_problems_are_reported_together() -> None:
    with pytest.raises(TemplateError) as caught:
        resolve(["${foo}", "${run_id}", "${bar}"], {})
    assert caught.value.problems == [
        ("-", "unknown template variable '${foo}'"),
        ("-", "template variable 'run_id' has no value"),
        ("-", "unknown template variable '${bar}'"),
    ]


def test_sql_looking_value_is_plain_text() -> None:
    evil = "'; DROP TABLE x; --"
    config = {"procedure": "sp_x", "args": {"p_org": "${org_slug}"}}
    resolved = resolve(config, {**VALUES, "org_slug": evil})
    assert resolved == {"procedure": "sp_x", "args": {"p_org": evil}}


def test_substituted_text_is_not_scanned_again() -> None:
    # A value holding a reference, backslashes or format braces is inserted verbatim.
    tricky = r"${run_id} {org_slug} \1 \g<0> {0.__class__}"
    assert resolve("[${credential_id}]", {"credential_id": tricky}) == f"[{tricky}]"


def test_other_bare_braces_are_text() -> None:
    assert resolve('{"json": 1} {foo}', {}) == '{"json": 1} {foo}'
    assert find_unknown_at('{"json": 1} {foo}') == []


def test_find_unknown_is_recursive_and_names_each_place() -> None:
    value = {"a": "${foo}", "b": ["${bar}", {"c": "${foo} ${start_date}"}], "d": 5}
    assert find_unknown_at(value) == [("a", "${foo}"), ("b[0]", "${bar}"), ("b[1].c", "${foo}")]


def unknown(value: object) -> list[str]:
    return [ref for _, ref in find_unknown_at(value)]


def test_find_unknown_catches_malformed_references() -> None:
    assert unknown("${ start_date }") == ["${ start_date }"]
    assert unknown("${}") == ["${}"]
    assert unknown("from ${start_date") == ["${start_date"]
    # A bare known name other than org_slug is almost surely a missing '$'.
    assert unknown("{start_date}") == ["{start_date}"]


def test_find_unknown_accepts_valid_references() -> None:
    assert unknown(["{org_slug}", "${org_slug}", "${run_id}", "$5 {x}"]) == []
