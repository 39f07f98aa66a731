"""Topological levels and cycle detection."""

from __future__ import annotations

import pytest

from pipeline.definition.config import StepSpec
from pipeline.definition.dag import find_cycle, plan_levels
from pipeline_ops_core.errors import ConfigError


def steps(*pairs: tuple[str, tuple[str, ...]]) -> list[StepSpec]:
    return [StepSpec(step_id=sid, ps_type="generic.noop", depends_on=deps) for sid, deps in pairs]


def test_chain() -> None:
    assert plan_levels(steps(("a", ()), ("b", ("a",)), ("c", ("b",)))) == [["a"], ["b"], ["c"]]


def test_diamond() -> None:
    plan = plan_levels(
        steps(("top", ()), ("left", ("top",)), ("right", ("top",)), ("join", ("left", "right")))
    )
    assert plan == [["top"], ["left", "right"], ["join"]]


def test_fan_out_keeps_file_order() -> None:
    plan = plan_levels(steps(("src", ()), ("z", ("src",)), ("a", ("src",)), ("m", ("src",))))
    assert plan == [["src"], ["z", "a", "m"]]


def test_fan_in() -> None:
    plan = plan_levels(steps(("x", ()), ("y", ()), ("z", ()), ("all", ("z", "x", "y"))))
    assert plan == [["x", "y", "z"], ["all"]]


def test_step_waits_for_its_deepest_dependency() -> None:
    # `late` is listed first but depends on the end of a chain.
    plan = plan_levels(steps(("late", ("b", "a")), ("a", ()), ("b", ("a",))))
    assert plan == [["a"], ["b"], ["late"]]


def test_independent_steps_share_the_first_level() -> None:
    assert plan_levels(steps(("a", ()), ("b", ()))) == [["a", "b"]]


def test_cycle_raises_naming_it() -> None:
    with pytest.raises(ConfigError) as caught:
        plan_levels(steps(("ok", ()), ("a", ("c", "ok")), ("b", ("a",)), ("c", ("b",))))
    assert str(caught.value) == "dependency cycle: a -> b -> c -> a"
    assert caught.value.problems == [("a", "dependency cycle: a -> b -> c -> a")]


def test_missing_dependency_raises() -> None:
    with pytest.raises(ConfigError, match="depends on missing step 'ghost'"):
        plan_levels(steps(("a", ("ghost",))))


def test_duplicate_step_raises() -> None:
    with pytest.raises(ConfigError, match="duplicate step_id 'a'"):
        plan_levels(steps(("a", ()), ("a", ())))


def test_find_cycle_none_for_a_dag() -> None:
    assert find_cycle({"a": [], "b": ["a"], "c": ["a", "b"]}) is None


def test_find_cycle_in_run_order_from_first_node() -> None:
    # b depends on a, c on b, a on c: a runs before b, b before c, c before a.
    assert find_cycle({"a": ["c"], "b": ["a"], "c": ["b"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": ["x"]}) == ["x", "x"]


def test_find_cycle_ignores_unknown_nodes() -> None:
    assert find_cycle({"a": ["ghost"]}) is None


def test_find_cycle_handles_long_chains_without_recursion() -> None:
    edges = {f"s{i}": [f"s{i - 1}"] if i else [] for i in range(5000)}
    assert find_cycle(edges) is None
    edges["s0"] = ["s4999"]
    cycle = find_cycle(edges)
    assert cycle is not None and len(cycle) == 5001 and cycle[0] == cycle[-1] == "s0"
