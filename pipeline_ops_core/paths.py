"""Where the files the product ships (configs, migrations, sample data) are, and how a
relative path in a pipeline file resolves.

From a checkout they are the repository's top-level folders. An installed wheel carries
them as package data under `pipeline_ops_core/shipped/` (setup.py copies them there at
build time), because site-packages has no project root and the install location is not
where an operator's own files live.

A relative path in a pipeline file (`sample_data/demo/usage.csv`,
`configs/pricing/{org_slug}.csv`) is looked up in the project directory first: the parent
of `PIPELINE_OPS_CONFIGS_DIR` when that is set, else the working directory. If no such file
is there, the shipped copy is used, so the demo runs from an empty directory.
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent


def shipped_root() -> Path:
    """The folder holding `configs/`, `migrations/` and `sample_data/` as shipped."""
    packaged = _PACKAGE / "shipped"
    return packaged if packaged.is_dir() else _CHECKOUT


def shipped(*parts: str) -> Path:
    return shipped_root().joinpath(*parts)


def project_dir(environ: dict[str, str] | None = None) -> Path:
    """Where an operator's own relative paths resolve: the folder that holds the configs
    directory (PIPELINE_OPS_CONFIGS_DIR), else the working directory."""
    env = os.environ if environ is None else environ
    configs = env.get("PIPELINE_OPS_CONFIGS_DIR")
    return Path(configs).resolve().parent if configs else Path.cwd()


def project_path(raw: str) -> Path:
    """A file path from a pipeline file: absolute as given; relative, in the project
    directory if it exists there, else the shipped copy (see the module docstring)."""
    path = Path(raw)
    if path.is_absolute():
        return path
    own = project_dir() / path
    if own.exists():
        return own
    packaged = shipped_root() / path
    return packaged if packaged.exists() else own
