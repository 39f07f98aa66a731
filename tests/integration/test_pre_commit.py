"""The pre-commit hooks, run as a contributor runs them: `pre-commit run --all-files` in a
fresh clone of this commit, with the project's .venv (the hooks call its tools) and a
PRE_COMMIT_HOME of the test's own.

- at this commit every hook passes, and pre-commit fetched no hook repository (all hooks
  are local: nothing to download);
- each hook can fail: a clone with one violation per hook fails on each of them.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRE_COMMIT = ROOT / ".venv" / "bin" / "pre-commit"
HOOKS = {
    "ruff check": "ruff",
    "ruff format": "ruff-format",
    "mypy (make typecheck)": "mypy",
    "import contracts (lint-imports)": "import-contracts",
    "pipeline-ops validate configs": "validate-configs",
}
STATUS_LINE = re.compile(
    r"^(?P<name>.+?)\.{3,}(?:\(no files to check\))?(?P<status>Passed|Failed|Skipped)$"
)


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A clone of the commit under test, sharing the project's .venv."""
    target = tmp_path / "repo"
    _git(tmp_path, "clone", "--quiet", "--no-checkout", str(ROOT), str(target))
    _git(target, "checkout", "--quiet", "--detach", _git(ROOT, "rev-parse", "HEAD"))
    (target / ".venv").symlink_to(ROOT / ".venv")
    return target


def run_hooks(repo: Path, home: Path) -> tuple[int, dict[str, str], str]:
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(home),
        # The clone's code, not the editable install's, is what the hooks import.
        "PYTHONPATH": str(repo),
        "PRE_COMMIT_COLOR": "never",
    }
    done = subprocess.run(
        [str(PRE_COMMIT), "run", "--all-files"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = done.stdout + done.stderr
    statuses = {}
    for line in output.splitlines():
        found = STATUS_LINE.match(line.strip())
        if found:
            statuses[found["name"]] = found["status"]
    return done.returncode, statuses, output


def test_every_hook_passes_on_a_clean_clone_without_fetching_anything(
    clone: Path, tmp_path: Path
) -> None:
    home = tmp_path / "pre-commit-home"
    code, statuses, output = run_hooks(clone, home)
    assert code == 0, output
    assert statuses == dict.fromkeys(HOOKS, "Passed"), output
    # pre-commit records every hook repository it cloned or installed in its home's db.
    with sqlite3.connect(home / "db.db") as conn:
        assert conn.execute("SELECT repo FROM repos").fetchall() == []
    # And the clone was not changed (ruff format would rewrite a badly formatted file).
    assert _git(clone, "status", "--porcelain", "--untracked-files=no") == ""


def test_each_hook_fails_on_its_own_violation(clone: Path, tmp_path: Path) -> None:
    probes = {
        # ruff check: an unused import; ruff format: a line ruff would re-wrap.
        "pipeline/hook_probe.py": "import os\n\nVALUE = {  'a':1}\n",
        # import contracts: the leaf core package importing the engine.
        "pipeline_ops_core/hook_probe.py": "import pipeline.settings  # noqa: F401\n",
        # validate: a step of an unknown processor type.
        "configs/demo/sample/hook_probe.yml": (
            "pipeline_id: hook_probe\nname: Hook probe\nprovider: demo\ndomain: sample\n"
            "steps:\n  - step_id: only\n    ps_type: generic.no_such_processor\n"
        ),
    }
    for name, text in probes.items():
        (clone / name).write_text(text)
    _git(clone, "add", *probes)
    code, statuses, output = run_hooks(clone, tmp_path / "pre-commit-home")
    assert code != 0
    assert statuses["ruff check"] == "Failed", output
    assert "F401" in output and "pipeline/hook_probe.py" in output
    assert statuses["ruff format"] == "Failed", output
    assert "files were modified by this hook" in output
    assert statuses["import contracts (lint-imports)"] == "Failed", output
    assert "pipeline_ops_core.hook_probe -> pipeline.settings" in output
    assert statuses["pipeline-ops validate configs"] == "Failed", output
    assert "generic.no_such_processor" in output
