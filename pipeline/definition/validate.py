"""`pipeline-ops validate [PATH...]`: every problem in every pipeline file, one per line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.definition.catalog import (
    SUFFIXES,
    Key,
    is_system_file,
    iter_pipeline_files,
    pipeline_key,
)
from pipeline.definition.config import load_pipeline
from pipeline.definition.providers import problems_for_file
from pipeline_ops_core.errors import ConfigError


@dataclass(frozen=True)
class Problem:
    file: str
    step: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.step}: {self.message}"


def _expand(paths: list[Path]) -> tuple[list[Path], list[Problem]]:
    """Files to check, in the order given (folders expanded, sorted), each once."""
    files: list[Path] = []
    skipped: list[Problem] = []
    seen: set[Path] = set()
    for given in map(Path, paths):
        if given.is_dir():
            candidates = iter_pipeline_files(given)
        elif given.is_file() and not given.name.endswith(SUFFIXES):
            skipped.append(Problem(str(given), "-", "not a .yml or .yaml file"))
            continue
        elif given.is_file():
            # An explicit registry file (e.g. from a shell glob) is not a pipeline.
            candidates = [] if is_system_file(given.resolve()) else [given]
        else:
            skipped.append(Problem(str(given), "-", "no such file or directory"))
            continue
        for path in candidates:
            real = path.resolve()
            if real not in seen:
                seen.add(real)
                files.append(path)
    return files, skipped


def _duplicate_problems(files: list[Path]) -> dict[Path, Problem]:
    by_key: dict[Key, list[Path]] = {}
    for path in files:
        by_key.setdefault(pipeline_key(path), []).append(path)
    problems: dict[Path, Problem] = {}
    for key, group in by_key.items():
        if len(group) < 2:
            continue
        for path in group:
            others = ", ".join(str(p) for p in group if p != path)
            message = f"duplicate pipeline key {'/'.join(key)} also in {others}"
            problems[path] = Problem(str(path), "-", message)
    return problems


def validate_paths(paths: list[Path]) -> list[Problem]:
    """Validate files and folders (recursively *.yml / *.yaml); [] means all valid.

    Besides each file's own problems, two files with the same last three path
    segments (provider/domain/pipeline) are reported, since the API could not tell
    them apart.
    """
    files, problems = _expand(paths)
    duplicates = _duplicate_problems(files)
    registries: set[Path] = set()
    for path in files:
        try:
            spec = load_pipeline(path)
        except ConfigError as exc:
            problems.extend(Problem(str(path), step, message) for step, message in exc.problems)
        else:
            # Provider registry checks (configs/system/providers.yml), see
            # pipeline/definition/providers.py.
            problems.extend(Problem(*found) for found in problems_for_file(path, spec, registries))
        if path in duplicates:
            problems.append(duplicates[path])
    return problems
