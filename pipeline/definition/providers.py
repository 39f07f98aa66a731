"""Checks against the provider registry (configs/system/providers.yml) for `validate`.

A pipeline under a configs root that has a registry must name a registered provider and
one of its domains, and a `genai.payg_usage` step must name a registered provider. The
registry itself is checked too: its entries, and that each default pipeline exists.
A `providers.yml` without a `providers:` list is not a registry and is left alone.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from credentials.vault import parse_secret
from pipeline.definition.catalog import SYSTEM_DIR, iter_pipeline_files, pipeline_key
from pipeline.definition.config import PipelineSpec
from pipeline_ops_core.egress import EgressRefused
from pipeline_ops_core.errors import TerminalError
from processors.providers import ProviderInfo, credential_url_problems, parse_registry

REGISTRY_NAME = "providers.yml"


def registry_path_for(pipeline_file: Path) -> Path | None:
    """The registry of the configs root a pipeline file lies under, if there is one."""
    for folder in Path(pipeline_file).resolve().parents:
        candidate = folder / SYSTEM_DIR / REGISTRY_NAME
        if candidate.is_file():
            return candidate
    return None


@lru_cache(maxsize=16)
def _read(path: Path, _mtime_ns: int) -> tuple[dict[str, ProviderInfo] | None, tuple[str, ...]]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        return None, (f"cannot read the provider registry: {exc}",)
    if not isinstance(raw, dict) or "providers" not in raw:
        return None, ()  # some other file: not ours to judge
    providers, problems = parse_registry(raw)
    return providers, tuple(problems)


def read_registry(path: Path) -> tuple[dict[str, ProviderInfo] | None, list[str]]:
    providers, problems = _read(path.resolve(), path.stat().st_mtime_ns)
    return providers, list(problems)


def registry_problems(path: Path) -> list[str]:
    """Problems of the registry file itself, including default pipelines that don't exist."""
    providers, problems = read_registry(path)
    if providers is None:
        return problems
    root = path.resolve().parent.parent
    existing = {"/".join(pipeline_key(p)) for p in iter_pipeline_files(root)}
    for info in providers.values():
        problems.extend(
            f"{info.key}: default pipeline {name} has no pipeline file under {root.name}/"
            for name in info.default_pipelines
            if name not in existing
        )
    return problems


def pipeline_problems(
    spec: PipelineSpec, registry: dict[str, ProviderInfo]
) -> list[tuple[str, str]]:
    """(step_id or "-", message) for each way `spec` disagrees with the registry."""
    found: list[tuple[str, str]] = []
    info = registry.get(spec.provider)
    if info is None:
        found.append(("-", f"provider '{spec.provider}' is not in {REGISTRY_NAME}"))
    elif spec.domain not in info.domains:
        found.append(
            (
                "-",
                f"domain '{spec.domain}' is not one of {spec.provider}'s: "
                + ", ".join(info.domains),
            )
        )
    for step in spec.steps:
        named: Any = step.config.get("provider")
        if step.ps_type == "genai.payg_usage" and named not in registry:
            found.append((step.step_id, f"config.provider '{named}' is not in {REGISTRY_NAME}"))
    return found


def problems_for_file(
    pipeline_file: Path, spec: PipelineSpec, seen_registries: set[Path]
) -> list[tuple[str, str, str]]:
    """(file, step, message) problems of a parsed pipeline file and, the first time it
    is met, of the registry that governs it."""
    path = registry_path_for(pipeline_file)
    if path is None:
        return []
    found: list[tuple[str, str, str]] = []
    if path not in seen_registries:
        seen_registries.add(path)
        found.extend((str(path), "-", message) for message in registry_problems(path))
    registry, _ = read_registry(path)
    if registry is not None:
        found.extend((str(pipeline_file), s, m) for s, m in pipeline_problems(spec, registry))
    return found


def check_credential_urls(provider: str, secret: Any) -> None:
    """The save-time egress check of `credentials add` and the admin API: EgressRefused
    naming every URL field of the secret that the egress policy refuses, and why.

    Only URLs are judged here; the shape of the secret is the vault's to report.
    """
    try:
        value = parse_secret(secret)
    except TerminalError:
        return
    problems = credential_url_problems(provider, value)
    if problems:
        raise EgressRefused("; ".join(problems))
