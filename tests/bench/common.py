"""Helpers shared by the benchmarks and the load test."""

from __future__ import annotations


def pct(values: list[float], q: float) -> float:
    """The q-quantile of `values`, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]
