"""Puts configs/, migrations/ and sample_data/ inside the wheel, as package data of
pipeline_ops_core (under `shipped/`), so an installed package runs the demo, migrates and
reads its providers registry with no checkout: pipeline_ops_core.paths finds them there.

The checkout keeps them at the top level, where people edit them; an editable install
reads them in place, so only a real build copies them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
SHIPPED = ("configs", "migrations", "sample_data")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")


class BuildWithShippedData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "pipeline_ops_core" / "shipped"
        for name in SHIPPED:
            shutil.copytree(HERE / name, target / name, ignore=IGNORED, dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildWithShippedData})
