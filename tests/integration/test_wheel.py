"""The package as users get it: a wheel built from the source tree, installed into fresh
venvs outside the checkout, run from an empty directory.

- With `[all]`: --version, db upgrade, orgs create, a --local run of the demo pipeline,
  `runs list --output json` and its status as JSON; the run completed and wrote its rows,
  and everything it made is under the working directory's var/ (nothing next to the
  installed code).
- With no extras: the OCI processor's import says which extra to install, `validate` still
  checks every shipped pipeline, and a run of the OCI pipeline is refused at admission
  (nothing recorded).

Slow (two venvs from the package index: minutes on a busy machine). The `[all]` venv is
installed from the lock first (requirements.txt, hashes checked), then the wheel with
`[all]`, which must find its declared dependencies satisfied by the lock. The build
happens in a copy of the tree, so the checkout gets no build/ or egg-info.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.servers import ROOT, VENV_BIN

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(1800)]

DEMO = "demo/sample/genai_usage"
OCI = "oci/cost/billing"
DATES = ("--start-date", "2026-01-01", "--end-date", "2026-01-02")
# What the wheel may put at the top of site-packages: the product's folders, its core
# package, the Celery config module, and the wheel's own metadata.
TOP_LEVEL = {
    "app",
    "tasks",
    "pipeline",
    "processors",
    "warehouse",
    "quota",
    "credentials",
    "notify",
    "pipeline_ops_core",
    "celeryconfig.py",
}


def source_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [f for f in listed.split("\0") if f and (ROOT / f).is_file()]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("source")
    for name in source_files():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, tree / name)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [str(VENV_BIN / "pip"), "wheel", ".", "--no-deps", "--no-build-isolation", "-w", str(out)],
        cwd=tree,
        check=True,
        capture_output=True,
        timeout=600,
    )
    (built,) = out.glob("pipeline_ops-*.whl")
    return built


@dataclass
class Install:
    venv: Path
    work: Path
    env: dict[str, str]

    def __call__(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.venv / "bin" / "pipeline-ops"), *args],
            env=self.env,
            cwd=self.work,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def python(self, code: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.venv / "bin" / "python"), "-c", code],
            env=self.env,
            cwd=self.work,
            capture_output=True,
            text=True,
            timeout=120,
        )


def pip(venv: Path, *args: str) -> None:
    done = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", *args],
        timeout=1500,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def install(tmp: Path, wheel: Path, extras: str, lock: Path | None = None) -> Install:
    venv = tmp / "venv"
    python = shutil.which("python3.11") or getattr(sys, "_base_executable", sys.executable)
    subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=120)
    if lock is not None:
        pip(venv, "--require-hashes", "-r", str(lock))
    pip(venv, f"{wheel}{extras}")
    work = tmp / "empty"
    work.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIPELINE_OPS_", "SUPABASE_", "VIRTUAL_ENV", "PYTHON"))
        and k not in ("DATABASE_URL", "WAREHOUSE_URL", "REDIS_URL")
    }
    # Nothing listens there: --local runs need no broker.
    env["REDIS_URL"] = "redis://127.0.0.1:1/0"
    return Install(venv, work, env)


def test_the_wheel_holds_the_shipped_files_and_no_generic_names(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
    shipped = "pipeline_ops_core/shipped/"

    assert top == TOP_LEVEL
    assert f"{shipped}migrations/env.py" in names
    assert f"{shipped}configs/system/providers.yml" in names
    assert f"{shipped}configs/{DEMO}.yml" in names
    assert f"{shipped}sample_data/demo/usage.csv" in names
    assert any(n.startswith("warehouse/sql/") and n.endswith(".sql") for n in names)
    assert any(n.startswith("quota/") and n.endswith(".lua") for n in names)
    assert not any(n.startswith("tests/") for n in names)


def test_all_extras_from_an_empty_directory(wheel: Path, tmp_path: Path) -> None:
    po = install(tmp_path, wheel, "[all]", lock=ROOT / "requirements.txt")

    version = po("--version")
    upgraded = po("db", "upgrade")
    created = po("orgs", "create", "acme")
    ran = po("run", DEMO, "--org", "acme", *DATES, "--local")

    assert version.returncode == 0 and version.stdout.strip() == "pipeline-ops, version 0.1.0"
    assert upgraded.returncode == 0, upgraded.stderr
    assert created.returncode == 0, created.stderr
    assert ran.returncode == 0, ran.stdout + ran.stderr
    run_id = re.search(r"^run_id: (\S+)$", ran.stdout, re.M).group(1)  # type: ignore[union-attr]
    listed = po("--output", "json", "runs", "list", "--org", "acme")
    assert listed.returncode == 0, listed.stderr
    (only,) = json.loads(listed.stdout)["runs"]
    assert only["run_id"] == run_id and only["status"] == "completed"
    status = po("status", run_id, "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["rows_written"] > 0
    rows = po.python(
        "import duckdb; c = duckdb.connect('var/warehouse.duckdb', read_only=True); "
        "print(c.execute('SELECT count(*) FROM acme_dev.demo_daily_cost').fetchone()[0])"
    )
    assert rows.stdout.strip() == "10", rows.stderr
    # State went under the working directory's var/, nothing beside the installed code.
    assert sorted(p.name for p in po.work.iterdir()) == ["var"]
    site = next((po.venv / "lib").glob("python3*/site-packages"))
    assert not (site / "var").exists()
    assert not (site / "pipeline_ops_core" / "shipped" / "var").exists()


def test_no_extras(wheel: Path, tmp_path: Path) -> None:
    po = install(tmp_path, wheel, "")

    imported = po.python("import processors.cloud.oci.cost_report")
    validated = po("validate")
    po("db", "upgrade")
    po("orgs", "create", "acme")
    refused = po("run", OCI, "--org", "acme", *DATES, "--local")
    doctor = po("doctor")

    assert imported.returncode == 1
    assert "MissingExtraError" in imported.stderr
    assert "pip install 'pipeline-ops[oci]'" in imported.stderr
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert refused.returncode != 0
    assert "pip install 'pipeline-ops[oci]'" in refused.stderr
    with sqlite3.connect(po.work / "var" / "pipeline_ops.db") as db:
        assert db.execute("SELECT count(*) FROM org_meta_pipeline_runs").fetchone() == (0,)
    assert "warn  extra oci: not installed" in doctor.stdout
    assert "pip install 'pipeline-ops[oci]'" in doctor.stdout
