"""Every entry point gets its services from the composition root (pipeline/bootstrap.py),
and no other module builds them.

Two checks. At run time: the Flask app factory, the Celery tasks, the CLI commands and
the demo each build exactly one service graph, through pipeline.bootstrap.build_services,
and construct no run store, vault or quota gate besides the one in it. In the source:
no module of app/, tasks/, pipeline/ or scripts/ but pipeline/bootstrap.py calls a
service constructor or factory (an AST walk that resolves each call through the
module's imports).
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import pipeline.bootstrap as bootstrap
from credentials.vault import VaultCredentialProvider
from pipeline.storage.db import upgrade
from pipeline.storage.run_store import SqlRunStore
from quota.gate import LedgerGate

ROOT = Path(__file__).resolve().parents[2]

# What builds a service, a store, an engine, a gate, the vault or a Celery adapter.
CONSTRUCTORS = {
    "pipeline.bootstrap.build_services",
    "pipeline.storage.run_store.SqlRunStore",
    "pipeline.storage.db.make_engine",
    "pipeline.definition.catalog.PipelineCatalog",
    "pipeline.runs.service.RunService",
    "pipeline.runs.execution.StepExecutor",
    "pipeline.orgs.service.OrgService",
    "pipeline.notifications.NotificationService",
    "pipeline.schedules.service.ScheduleService",
    "pipeline.schedules.dispatch.ScheduleDispatcher",
    "pipeline.schedules.dispatch.ScheduleDispatcher.for_runs",
    "pipeline.subscriptions.SubscriptionService",
    "pipeline.queue.CeleryDispatcher",
    "pipeline.queue.CeleryNotificationQueue",
    "quota.factory.build_quota",
    "quota.factory.build_ledger_gate",
    "credentials.vault.VaultCredentialProvider",
    "credentials.keys.key_provider",
    "warehouse.from_url",
}
SOURCES = ["app", "tasks", "pipeline", "scripts", "celeryconfig.py"]


# -- the source rule ------------------------------------------------------------------------


def constructor_calls(source: str, module: str) -> list[tuple[int, str]]:
    """(line, qualified name) of each call in `source` of a name in CONSTRUCTORS."""
    tree = ast.parse(source)
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    names[alias.name.split(".")[0]] = alias.name.split(".")[0]
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        parts: list[str] = []
        target: ast.expr = node.func
        while isinstance(target, ast.Attribute):
            parts.append(target.attr)
            target = target.value
        if not isinstance(target, ast.Name):
            continue
        head = names.get(target.id, f"{module}.{target.id}")
        qualified = ".".join([head, *reversed(parts)])
        if qualified in CONSTRUCTORS:
            found.append((node.lineno, qualified))
    return found


def production_modules() -> Iterator[tuple[Path, str]]:
    for source in SOURCES:
        path = ROOT / source
        for file in [path] if path.is_file() else sorted(path.rglob("*.py")):
            module = ".".join(file.relative_to(ROOT).with_suffix("").parts)
            yield file, module.removesuffix(".__init__")


def test_only_the_composition_root_builds_services() -> None:
    built = {
        f"{file.relative_to(ROOT)}:{line}: {name}"
        for file, module in production_modules()
        if module != "pipeline.bootstrap"
        for line, name in constructor_calls(file.read_text(), module)
    }
    assert built == set()


def test_the_rule_sees_what_the_root_builds_and_what_others_would() -> None:
    # The walk resolves calls through imports: it finds every construction in the root ...
    root = (ROOT / "pipeline/bootstrap.py").read_text()
    in_root = {name for _, name in constructor_calls(root, "pipeline.bootstrap")}
    assert {
        "pipeline.storage.run_store.SqlRunStore",
        "pipeline.storage.db.make_engine",
        "quota.factory.build_quota",
        "credentials.vault.VaultCredentialProvider",
        "pipeline.queue.CeleryDispatcher",
    } <= in_root
    # ... and one a view or a command would add, however it is imported.
    added = (
        "import credentials.vault as v\n"
        "from pipeline.storage import db\n"
        "from pipeline.storage.run_store import SqlRunStore as Store\n"
        "def view():\n"
        "    Store(db.make_engine('sqlite://'))\n"
        "    v.VaultCredentialProvider(None, None)\n"
    )
    assert sorted(name for _, name in constructor_calls(added, "app.api.runs")) == [
        "credentials.vault.VaultCredentialProvider",
        "pipeline.storage.db.make_engine",
        "pipeline.storage.run_store.SqlRunStore",
    ]


# -- the entry points, at run time ----------------------------------------------------------


@pytest.fixture
def built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Counts service graphs built by the root, and stores, vaults and gates built at all."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'meta.db'}")
    monkeypatch.setenv("WAREHOUSE_URL", f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    monkeypatch.setenv("PIPELINE_OPS_EAGER", "1")  # no Redis mirror, no broker to ask
    upgrade(f"sqlite:///{tmp_path / 'meta.db'}")
    counts: Counter[str] = Counter()
    real_build = bootstrap.build_services

    def build(*args: Any, **kwargs: Any) -> bootstrap.Services:
        counts["graph"] += 1
        services = real_build(*args, **kwargs)
        counts["last"] = id(services)
        return services

    monkeypatch.setattr(bootstrap, "build_services", build)
    for cls, key in (
        (SqlRunStore, "store"),
        (VaultCredentialProvider, "vault"),
        (LedgerGate, "gate"),
    ):
        real_init = cls.__init__

        def init(self: Any, *args: Any, _real: Any = real_init, _key: str = key, **kw: Any) -> None:
            counts[_key] += 1
            _real(self, *args, **kw)

        monkeypatch.setattr(cls, "__init__", init)
    bootstrap.use_worker_services(None)
    yield counts
    bootstrap.use_worker_services(None)


def one_graph(counts: Counter[str]) -> None:
    assert (counts["graph"], counts["store"], counts["vault"], counts["gate"]) == (1, 1, 1, 1)


def test_the_flask_app_factory(built: Counter[str]) -> None:
    from app import create_app
    from app.web.ext import EXTENSION

    app = create_app()
    one_graph(built)
    assert id(app.extensions[EXTENSION]) == built["last"]


def test_the_celery_tasks(built: Counter[str]) -> None:
    from tasks import lifecycle, runtime
    from tasks.celery_app import app

    assert app.main == "pipeline_ops"
    assert lifecycle.reap.run() == {"reaped": []}  # a task body, as a worker runs it
    one_graph(built)
    assert id(runtime.services()) == built["last"]  # and later tasks share the graph
    one_graph(built)


@pytest.mark.parametrize(
    "command",
    [
        ["orgs", "list"],
        ["status", "00000000"],
        ["reap"],
        ["bootstrap-sync"],
        ["credentials", "list"],
        ["quota", "show", "nobody"],
        ["schedules", "list"],
        ["notifications", "show", "nobody"],
        ["subscriptions", "list", "--org", "nobody"],
    ],
    ids=lambda command: " ".join(command),
)
def test_the_cli_commands(built: Counter[str], command: list[str]) -> None:
    from app.cli import main

    result = CliRunner().invoke(main, command)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    one_graph(built)


def test_the_demo(built: Counter[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    spec = importlib.util.spec_from_file_location("demo_under_test", ROOT / "scripts/demo.py")
    assert spec is not None and spec.loader is not None
    demo = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "demo_under_test", demo)
    spec.loader.exec_module(demo)
    given: list[Any] = []
    # Everything up to the run itself: the org and its key are made with the root's services.
    monkeypatch.setattr(demo, "run_local", lambda services: given.append(services) or 0)
    monkeypatch.setenv("PIPELINE_OPS_DEMO_LOCAL", "1")
    assert demo.main() == 0
    one_graph(built)
    assert [id(s) for s in given] == [built["last"]]
    assert given[0].store.get_org(demo.ORG) is not None
