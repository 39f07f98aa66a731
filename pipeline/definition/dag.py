"""The step graph: cycle detection and topological levels.

Edges point from a step to the steps it depends on (`depends_on`). A level is a
set of steps whose dependencies all sit in earlier levels, so each level can run
as one parallel group.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from pipeline_ops_core.errors import ConfigError

if TYPE_CHECKING:
    from pipeline.definition.config import StepSpec


def find_cycle(edges: Mapping[str, Sequence[str]]) -> list[str] | None:
    """Return one dependency cycle in run order, first node repeated at the end, or None.

    `edges` maps each node to the nodes it depends on. The cycle reads in run
    order (`a -> b` means b depends on a) and starts at the node that comes first
    in `edges`, so messages are stable. Edges to nodes not in `edges` are ignored;
    a missing dependency is a different error.
    """
    order = {node: index for index, node in enumerate(edges)}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = fully explored
    for root in edges:
        if state.get(root):
            continue
        # Iterative DFS: a pipeline file could hold a long chain, and recursion
        # depth should not be a function of user input.
        path: list[str] = [root]
        iters = [iter(edges[root])]
        state[root] = 1
        while path:
            for dep in iters[-1]:
                if dep not in edges:
                    continue
                if state.get(dep) == 1:
                    cycle = path[path.index(dep) :]
                    return _in_run_order(cycle, order)
                if not state.get(dep):
                    state[dep] = 1
                    path.append(dep)
                    iters.append(iter(edges[dep]))
                    break
            else:
                state[path.pop()] = 2
                iters.pop()
    return None


def _in_run_order(cycle: list[str], order: Mapping[str, int]) -> list[str]:
    # The DFS walks dependency edges (x depends on next); run order is the reverse.
    run = list(reversed(cycle))
    start = min(range(len(run)), key=lambda i: order[run[i]])
    run = run[start:] + run[:start]
    return [*run, run[0]]


def format_cycle(cycle: Sequence[str]) -> str:
    return "dependency cycle: " + " -> ".join(cycle)


def plan_levels(steps: Sequence[StepSpec]) -> list[list[str]]:
    """Kahn's algorithm, level by level; steps within a level keep file order.

    Raises ConfigError on a duplicate step id, a missing dependency or a cycle.
    A validated PipelineSpec never triggers these; they guard hand-built specs.
    """
    edges: dict[str, tuple[str, ...]] = {}
    for step in steps:
        if step.step_id in edges:
            raise ConfigError(
                f"duplicate step_id '{step.step_id}'",
                [(step.step_id, f"duplicate step_id '{step.step_id}'")],
            )
        edges[step.step_id] = tuple(step.depends_on)
    for step_id, deps in edges.items():
        for dep in deps:
            if dep not in edges:
                message = f"depends on missing step '{dep}'"
                raise ConfigError(message, [(step_id, message)])

    placed: set[str] = set()
    remaining = list(edges)
    levels: list[list[str]] = []
    while remaining:
        level = [s for s in remaining if all(dep in placed for dep in edges[s])]
        if not level:
            cycle = find_cycle({s: edges[s] for s in remaining}) or remaining
            message = format_cycle(cycle)
            raise ConfigError(message, [(cycle[0], message)])
        levels.append(level)
        placed.update(level)
        remaining = [s for s in remaining if s not in placed]
    return levels
