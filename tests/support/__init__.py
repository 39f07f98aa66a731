"""Helpers shared by the integration tests, the benchmarks and the demo."""
