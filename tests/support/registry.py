"""The shipped provider registry in a test's configs directory."""

from __future__ import annotations

from pathlib import Path

from processors.providers import REGISTRY_PATH


def install_provider_registry(configs_dir: Path) -> None:
    """Copy configs/system/providers.yml into `configs_dir`, so the pipelines there are
    governed by the real registry (e.g. which providers need a stored credential)."""
    system = configs_dir / "system"
    system.mkdir(parents=True, exist_ok=True)
    (system / "providers.yml").write_bytes(REGISTRY_PATH.read_bytes())
