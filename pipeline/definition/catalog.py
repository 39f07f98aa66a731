"""Which pipeline file an API path names.

A pipeline lives at `configs/[category/]{provider}/{domain}/{pipeline}.yml` and is
addressed by its last three path segments. Lookups only ever consult the scanned
index, so a request segment never reaches the filesystem: the segment check is
a second fence, not the only one.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from pipeline.definition.config import PipelineSpec, load_pipeline
from pipeline_ops_core.errors import ConfigError, NotFoundError
from pipeline_ops_core.identifiers import IDENT_RE

Key = tuple[str, str, str]

SUFFIXES = (".yml", ".yaml")
SYSTEM_DIR = "system"  # configs/system/ holds registries such as providers.yml


def pipeline_key(path: Path) -> Key:
    """The three segments that address a pipeline file: (provider, domain, pipeline)."""
    return (path.parent.parent.name, path.parent.name, path.stem)


def is_valid_segment(segment: object) -> bool:
    return isinstance(segment, str) and IDENT_RE.fullmatch(segment) is not None


def _is_configs_root(folder: Path, root: Path) -> bool:
    return folder == root or folder.name == "configs"


def is_system_file(path: Path) -> bool:
    """True for a registry file such as configs/system/providers.yml."""
    return path.parent.name == SYSTEM_DIR and path.parent.parent.name == "configs"


def iter_pipeline_files(root: Path) -> list[Path]:
    """Every *.yml/*.yaml under `root`, sorted, skipping hidden folders and a `system`
    folder directly under a configs root (`root` itself, or any folder named `configs`).

    Symlinked folders are not followed, so the scan cannot wander outside `root`.
    """
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not d.startswith(".") and not (d == SYSTEM_DIR and _is_configs_root(here, root))
        )
        found.extend(here / f for f in sorted(filenames) if f.endswith(SUFFIXES))
    return found


class PipelineCatalog:
    """The pipelines under one configs directory, keyed by (provider, domain, pipeline).

    The directory scan is cached; a key that is missing triggers a rescan (at most
    every RESCAN_SECONDS), so a new file is picked up without a restart. Parsed
    specs are cached per file and re-read when the file's mtime or size changes.
    """

    RESCAN_SECONDS = 2.0

    def __init__(self, configs_dir: Path) -> None:
        self.configs_dir = Path(configs_dir)
        self._index: dict[Key, list[Path]] | None = None
        self._scanned_at = 0.0
        self._specs: dict[Path, tuple[tuple[int, int], PipelineSpec]] = {}

    def refresh(self) -> None:
        self._index = self._scan()
        self._scanned_at = time.monotonic()

    def _scan(self) -> dict[Key, list[Path]]:
        index: dict[Key, list[Path]] = {}
        if not self.configs_dir.is_dir():
            return index
        for path in iter_pipeline_files(self.configs_dir):
            relative = path.relative_to(self.configs_dir)
            key = pipeline_key(path)
            # Fewer than three segments is not a pipeline; a name the API cannot
            # spell (e.g. `Billing.yml`) is unreachable, so it is left out.
            if len(relative.parts) < 3 or not all(is_valid_segment(s) for s in key):
                continue
            index.setdefault(key, []).append(path)
        return index

    def _entries(self) -> dict[Key, list[Path]]:
        if self._index is None:
            self.refresh()
        assert self._index is not None
        return self._index

    def keys(self) -> list[Key]:
        return sorted(self._entries())

    def path_for(self, provider: str, domain: str, pipeline: str) -> Path:
        """The file for a key. NotFoundError if absent or a segment is malformed;
        ConfigError if two files claim the key (validate rejects that in CI)."""
        segments = (provider, domain, pipeline)
        if not all(is_valid_segment(s) for s in segments):
            raise NotFoundError(f"pipeline {provider}/{domain}/{pipeline} not found")
        paths = self._entries().get(segments)
        if not paths and time.monotonic() - self._scanned_at > self.RESCAN_SECONDS:
            self.refresh()
            paths = self._entries().get(segments)
        if not paths:
            raise NotFoundError(f"pipeline {provider}/{domain}/{pipeline} not found")
        if len(paths) > 1:
            listed = ", ".join(str(p) for p in paths)
            raise ConfigError(f"pipeline {provider}/{domain}/{pipeline} is ambiguous: {listed}")
        return paths[0]

    def load(self, provider: str, domain: str, pipeline: str) -> PipelineSpec:
        path = self.path_for(provider, domain, pipeline)
        try:
            stat = path.stat()
        except FileNotFoundError:
            self.refresh()
            raise NotFoundError(f"pipeline {provider}/{domain}/{pipeline} not found") from None
        signature = (stat.st_mtime_ns, stat.st_size)
        cached = self._specs.get(path)
        if cached is not None and cached[0] == signature:
            return cached[1]
        spec = load_pipeline(path)
        self._specs[path] = (signature, spec)
        return spec

    def duplicates(self) -> list[tuple[Key, list[Path]]]:
        return [
            (key, list(paths)) for key, paths in sorted(self._entries().items()) if len(paths) > 1
        ]
