"""The real `pipeline-ops` console script, run as a subprocess against files in tmp_path.

No servers: `run --local` executes the Celery tasks in-process (REDIS_URL points at a
port nothing listens on, to prove it), the metadata DB is a SQLite file and the
warehouse a DuckDB file, both under tmp_path.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from warehouse.procedures import list_procedures
from warehouse.schemas import TABLE_SCHEMAS

# What `bootstrap` creates in each org dataset.
TABLES = len(TABLE_SCHEMAS)
PROCEDURES = ", ".join(sorted(list_procedures()))

ROOT = Path(__file__).resolve().parents[2]
PIPELINE_OPS = Path(sys.executable).parent / "pipeline-ops"
DEMO = "demo/sample/genai_usage"
DATES = ("--start-date", "2026-01-01", "--end-date", "2026-01-02")
UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
STEPS = ("extract_usage", "load_prices", "daily_cost")


@dataclass
class CliEnv:
    root: Path
    env: dict[str, str]

    @property
    def db(self) -> Path:
        return self.root / "meta.db"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    def __call__(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(PIPELINE_OPS), *args],
            env=self.env,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def sql(self, query: str, *params: object) -> list[tuple[object, ...]]:
        con = sqlite3.connect(self.db)
        try:
            return con.execute(query, params).fetchall()
        finally:
            con.close()

    def run_count(self) -> int:
        if not self.db.exists():
            return 0
        tables = self.sql("SELECT name FROM sqlite_master WHERE name = 'org_meta_pipeline_runs'")
        return int(self.sql("SELECT count(*) FROM org_meta_pipeline_runs")[0][0]) if tables else 0

    def duck(self, query: str) -> list[tuple[object, ...]]:
        con = duckdb.connect(str(self.warehouse), read_only=True)
        try:
            return con.execute(query).fetchall()
        finally:
            con.close()


def make_env(root: Path) -> CliEnv:
    root.mkdir(parents=True, exist_ok=True)
    configs = root / "configs"
    shutil.copytree(ROOT / "configs", configs)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIPELINE_OPS_", "SUPABASE_"))
        and k not in ("DATABASE_URL", "WAREHOUSE_URL", "REDIS_URL")
    }
    env.update(
        {
            "PIPELINE_OPS_VAR_DIR": str(root / "var"),
            "DATABASE_URL": f"sqlite:///{root / 'meta.db'}",
            "WAREHOUSE_URL": f"duckdb:///{root / 'warehouse.duckdb'}",
            "PIPELINE_OPS_CONFIGS_DIR": str(configs),
            "REDIS_URL": "redis://127.0.0.1:1/0",  # nothing listens here
        }
    )
    return CliEnv(root, env)


@dataclass
class Demo:
    cli: CliEnv
    create: subprocess.CompletedProcess[str]
    run: subprocess.CompletedProcess[str]
    run_id: str


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """An env with org acme created and the demo pipeline run once with --local."""
    cli = make_env(tmp_path_factory.mktemp("cli-demo"))
    create = cli("orgs", "create", "acme")
    assert create.returncode == 0, create.stderr
    run = cli("run", DEMO, "--org", "acme", *DATES, "--local")
    match = re.search(rf"^run_id: ({UUID_RE})$", run.stdout, re.M)
    assert match, f"no run_id in:\n{run.stdout}\n{run.stderr}"
    return Demo(cli, create, run, match.group(1))


@pytest.fixture
def cli(tmp_path: Path) -> CliEnv:
    return make_env(tmp_path / "env")


# -- validate -------------------------------------------------------------------------------


def test_validate_the_repo_configs(cli: CliEnv) -> None:
    default = cli("validate")
    assert default.returncode == 0, default.stdout + default.stderr
    assert default.stdout.strip() == "ok: all pipeline files are valid"

    explicit = cli("validate", str(ROOT / "configs"))
    assert explicit.returncode == 0, explicit.stdout + explicit.stderr
    assert "ok: all pipeline files are valid" in explicit.stdout


HEADER = "name: x\nprovider: p\ndomain: d\n"
BROKEN = {
    "unknown_key.yml": (
        "pipeline_id: bad_key\n" + HEADER + "colour: red\n"
        "steps:\n  - step_id: only\n    ps_type: generic.noop\n",
        "-",
        "colour: Unknown field.",
    ),
    "cycle.yml": (
        "pipeline_id: bad_cycle\n" + HEADER + "steps:\n"
        "  - {step_id: a, ps_type: generic.noop, depends_on: [b]}\n"
        "  - {step_id: b, ps_type: generic.noop, depends_on: [a]}\n",
        "a",
        "dependency cycle: a -> b -> a",
    ),
    "unknown_type.yml": (
        "pipeline_id: bad_type\n" + HEADER + "steps:\n"
        "  - {step_id: extract, ps_type: generic.does_not_exist}\n",
        "extract",
        "ps_type: unknown ps_type 'generic.does_not_exist'",
    ),
    "bad_cron.yml": (
        "pipeline_id: bad_cron\n" + HEADER + 'schedule: "61 * * * *"\n'
        "steps:\n  - {step_id: only, ps_type: generic.noop}\n",
        "-",
        "schedule: bad cron '61 * * * *'",
    ),
    "unknown_var.yml": (
        "pipeline_id: bad_var\n" + HEADER + "steps:\n"
        '  - {step_id: call, ps_type: generic.noop, config: {when: "${yesterday}"}}\n',
        "call",
        "config.when: unknown template variable '${yesterday}'",
    ),
    "malformed.yml": (
        "pipeline_id: broken\nsteps: [unclosed\n",
        "-",
        "malformed YAML at line 3",
    ),
}
LINE_RE = re.compile(r"^(?P<file>\S+\.yml): (?P<step>[^:]+): (?P<message>.+)$")


def write_broken(folder: Path) -> dict[str, Path]:
    paths = {}
    for name, (text, _, _) in BROKEN.items():
        path = folder / "p" / "d" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        paths[name] = path
    return paths


def test_validate_reports_one_line_per_problem(cli: CliEnv) -> None:
    paths = write_broken(cli.root / "broken")

    result = cli("validate", str(cli.root / "broken"))

    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert len(lines) == len(BROKEN), result.stdout
    seen = {}
    for line in lines:
        match = LINE_RE.match(line)
        assert match, f"not `file: step: message`: {line!r}"
        seen[Path(match["file"]).name] = (match["file"], match["step"], match["message"])
    assert set(seen) == set(BROKEN)
    for name, (_, step, message) in BROKEN.items():
        file, got_step, got_message = seen[name]
        assert file == str(paths[name])
        assert got_step == step, line
        assert message in got_message, got_message
    assert f"{len(BROKEN)} problem(s)" in result.stderr


def test_validate_explicit_files_reports_only_their_problems(cli: CliEnv) -> None:
    paths = write_broken(cli.root / "broken")
    good = cli.root / "configs" / "demo" / "sample" / "genai_usage.yml"

    result = cli("validate", str(good), str(paths["cycle.yml"]), str(paths["bad_cron.yml"]))

    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert lines == [
        f"{paths['cycle.yml']}: a: dependency cycle: a -> b -> a",
        f"{paths['bad_cron.yml']}: -: schedule: bad cron '61 * * * *'",
    ]


# -- orgs -----------------------------------------------------------------------------------


def test_orgs_create_prints_the_key_once(demo: Demo) -> None:
    assert demo.create.returncode == 0
    match = re.search(r"^api_key: (po_[a-z0-9]{12}_[A-Za-z0-9_\-]{20,})$", demo.create.stdout, re.M)
    assert match, demo.create.stdout
    assert "org_slug: acme" in demo.create.stdout
    assert "not shown again" in demo.create.stderr
    key = match.group(1)
    (row,) = demo.cli.sql("SELECT * FROM organizations WHERE org_slug = 'acme'")
    assert all(key not in str(value) for value in row)


def test_orgs_create_twice_fails(demo: Demo) -> None:
    again = demo.cli("orgs", "create", "acme")
    assert again.returncode == 1
    assert "error: org 'acme' already exists" in again.stderr
    assert "api_key" not in again.stdout
    assert demo.cli.sql("SELECT count(*) FROM organizations")[0][0] == 1


def test_orgs_create_refuses_a_bad_slug(cli: CliEnv) -> None:
    result = cli("orgs", "create", "Bad-Slug")
    assert result.returncode == 1
    assert "invalid org slug 'Bad-Slug'" in result.stderr


def test_orgs_list(demo: Demo) -> None:
    created = demo.cli("orgs", "create", "globex", "--name", "Globex Corp")
    assert created.returncode == 0

    result = demo.cli("orgs", "list")

    assert result.returncode == 0
    rows = [line.split("\t") for line in result.stdout.strip().splitlines()]
    assert [r[:2] for r in rows] == [["acme", "acme"], ["globex", "Globex Corp"]]
    assert all(re.match(r"^\d{4}-\d\d-\d\dT", r[2]) for r in rows)


# -- run --local and status -----------------------------------------------------------------


def test_run_local_completes_and_prints_each_step(demo: Demo) -> None:
    out = demo.run
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0] == f"run_id: {demo.run_id}"
    assert lines[-1] == "status: completed"
    for step in STEPS:
        assert re.search(
            rf"^\s+{step}\s+attempt 1: completed in \d+ ms, \d+ rows$", out.stdout, re.M
        )
    assert re.search(r"extract_usage\s+attempt 1: completed in \d+ ms, 10 rows", out.stdout)
    assert re.search(r"daily_cost\s+attempt 1: completed in \d+ ms, 10 rows", out.stdout)


def test_run_local_writes_the_warehouse_and_the_records(demo: Demo) -> None:
    assert demo.cli.duck("SELECT count(*) FROM acme_dev.demo_usage_raw") == [(10,)]
    assert demo.cli.duck("SELECT count(*) FROM acme_dev.demo_daily_cost") == [(10,)]
    assert demo.cli.duck(
        "SELECT DISTINCT x_org_slug, x_pipeline_id, x_run_id FROM acme_dev.demo_usage_raw"
    ) == [("acme", "demo_genai_usage", demo.run_id)]
    (run,) = demo.cli.sql(
        "SELECT status, trigger, start_date, end_date FROM org_meta_pipeline_runs WHERE run_id = ?",
        demo.run_id,
    )
    assert run == ("completed", "cli", "2026-01-01", "2026-01-02")
    statuses = demo.cli.sql(
        "SELECT to_status FROM org_meta_state_transitions WHERE run_id = ? ORDER BY id",
        demo.run_id,
    )
    assert [s for (s,) in statuses] == [
        "pending",
        "validating",
        "queued",
        "running",
        "completed",
    ]


def test_status_shows_the_run_and_its_steps(demo: Demo) -> None:
    result = demo.cli("status", demo.run_id)

    assert result.returncode == 0, result.stderr
    assert f"run_id:    {demo.run_id}" in result.stdout
    assert re.search(r"^status:\s+completed$", result.stdout, re.M)
    assert "pipeline:  demo_genai_usage (demo/sample/genai_usage)" in result.stdout
    assert "dates:     2026-01-01 .. 2026-01-02" in result.stdout
    step_lines = [line for line in result.stdout.splitlines() if "attempt 1" in line]
    assert len(step_lines) == 3
    for step in STEPS:
        assert any(line.split()[0] == step and "completed" in line for line in step_lines)


def test_status_json(demo: Demo) -> None:
    result = demo.cli("status", demo.run_id, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["run"]["run_id"] == demo.run_id
    assert data["run"]["status"] == "completed"
    assert "plan" not in data["run"]
    assert sorted(s["step_id"] for s in data["steps"]) == sorted(STEPS)
    assert {s["status"] for s in data["steps"]} == {"completed"}


def test_status_of_an_unknown_run_fails(demo: Demo) -> None:
    unknown = str(uuid.uuid4())
    result = demo.cli("status", unknown)
    assert result.returncode == 1
    assert f"error: run {unknown} not found" in result.stderr
    assert result.stdout == ""


# -- bad input records nothing --------------------------------------------------------------


BAD_RUNS = [
    pytest.param(
        (DEMO, "--org", "acme", "--date", "2026-13-01"),
        2,
        "--date must be a date as YYYY-MM-DD, got '2026-13-01'",
        id="bad-date",
    ),
    pytest.param(
        (DEMO, "--org", "acme", "--start-date", "2026-02-30", "--end-date", "2026-03-01"),
        2,
        "--start-date must be a date as YYYY-MM-DD, got '2026-02-30'",
        id="bad-start-date",
    ),
    pytest.param(
        (DEMO, "--org", "acme", "--start-date", "2026-01-01", "--end-date", "tomorrow"),
        2,
        "--end-date must be a date as YYYY-MM-DD, got 'tomorrow'",
        id="bad-end-date",
    ),
    pytest.param(
        (DEMO, "--org", "acme", "--start-date", "2026-01-05", "--end-date", "2026-01-01"),
        1,
        "end_date 2026-01-01 is before start_date 2026-01-05",
        id="end-before-start",
    ),
    pytest.param(
        (DEMO, "--org", "acme", "--start-date", "2024-01-01", "--end-date", "2026-01-01"),
        1,
        "date range longer than 366 days",
        id="range-too-long",
    ),
    pytest.param(
        (DEMO, "--org", "acme", "--date", "2026-01-01", "--start-date", "2026-01-01"),
        2,
        "use either --date or --start-date/--end-date",
        id="date-and-start-date",
    ),
    pytest.param(
        (DEMO, "--org", "initech", "--date", "2026-01-01"),
        1,
        "org 'initech' not found",
        id="unknown-org",
    ),
    pytest.param(
        ("demo/sample/nothing_here", "--org", "acme", "--date", "2026-01-01"),
        1,
        "pipeline demo/sample/nothing_here not found",
        id="unknown-pipeline",
    ),
    pytest.param(
        ("demo/../genai_usage", "--org", "acme", "--date", "2026-01-01"),
        1,
        "pipeline demo/../genai_usage not found",
        id="dotdot-segment",
    ),
    pytest.param(
        ("../sample/genai_usage", "--org", "acme", "--date", "2026-01-01"),
        1,
        "pipeline ../sample/genai_usage not found",
        id="leading-dotdot",
    ),
    pytest.param(
        ("demo/sample/../../genai_usage", "--org", "acme", "--date", "2026-01-01"),
        2,
        "pipeline must be PROVIDER/DOMAIN/PIPELINE",
        id="dotdot-extra-segments",
    ),
    pytest.param(
        (DEMO, "--org", "acme", "--date", "2026-01-01", "--param", "novalue"),
        2,
        "--param must be KEY=VALUE, got 'novalue'",
        id="param-without-equals",
    ),
    pytest.param(
        (DEMO, "--org", "acme", "--date", "2026-01-01", "--param", "=v"),
        2,
        "--param must be KEY=VALUE, got '=v'",
        id="param-without-key",
    ),
]


@pytest.mark.parametrize(("args", "code", "message"), BAD_RUNS)
def test_bad_run_input_exits_non_zero_and_records_nothing(
    demo: Demo, args: tuple[str, ...], code: int, message: str
) -> None:
    before = demo.cli.run_count()

    result = demo.cli("run", *args, "--local")

    assert result.returncode == code, result.stdout + result.stderr
    assert f"error: {message}" in result.stderr
    assert "run_id:" not in result.stdout
    assert demo.cli.run_count() == before


@pytest.mark.parametrize("credential", ["Bad Cred", "../../x"])
def test_a_malformed_credential_is_refused_and_records_nothing(demo: Demo, credential: str) -> None:
    # The API refuses these credential ids with 422; the CLI must not record them either.
    before = demo.cli.run_count()

    result = demo.cli(
        "run", DEMO, "--org", "acme", "--date", "2026-01-03", "--credential", credential, "--local"
    )

    assert result.returncode != 0, result.stdout
    assert "error:" in result.stderr
    assert "credential" in result.stderr
    assert demo.cli.run_count() == before


def test_a_run_while_the_same_key_is_active_conflicts(demo: Demo) -> None:
    # A run left queued (e.g. its process died before the worker got it) holds the key.
    held = str(uuid.uuid4())
    key = "acme|demo_genai_usage|default|2026-02-01|2026-02-01"
    insert_run(demo.cli, held, key, "queued", "2999-01-01 00:00:00.000000", day="2026-02-01")
    before = demo.cli.run_count()

    result = demo.cli("run", DEMO, "--org", "acme", "--date", "2026-02-01", "--local")

    assert result.returncode == 1
    assert f"(run {held})" in result.stderr
    assert "already active" in result.stderr
    assert demo.cli.run_count() == before


# -- bootstrap, bootstrap-sync, reap --------------------------------------------------------


def test_bootstrap_and_bootstrap_sync(cli: CliEnv) -> None:
    assert cli("orgs", "create", "acme").returncode == 0

    boot = cli("bootstrap")
    assert boot.returncode == 0, boot.stderr
    assert "metadata database: migrated (sqlite)" in boot.stdout
    assert f"acme_dev: {TABLES} tables, procedures: {PROCEDURES}" in boot.stdout
    tables = cli.duck(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'acme_dev'"
        " ORDER BY table_name"
    )
    assert tables == [(name,) for name in sorted(TABLE_SCHEMAS)]
    lineage = cli.duck(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'acme_dev'"
        " AND table_name = 'demo_usage_raw' AND column_name LIKE 'x\\_%' ESCAPE '\\'"
    )
    assert len(lineage) == 7

    fresh = cli("bootstrap-sync")
    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stdout.strip() == "0 table(s) changed"

    con = duckdb.connect(str(cli.warehouse))
    con.execute("ALTER TABLE acme_dev.demo_daily_cost DROP COLUMN requests")
    con.close()

    synced = cli("bootstrap-sync")
    assert synced.returncode == 0, synced.stderr
    assert synced.stdout.strip().splitlines() == [
        "acme_dev.demo_daily_cost: added requests",
        "1 table(s) changed",
    ]
    assert cli.duck(
        "SELECT data_type FROM information_schema.columns WHERE table_schema = 'acme_dev'"
        " AND table_name = 'demo_daily_cost' AND column_name = 'requests'"
    ) == [("BIGINT",)]

    again = cli("bootstrap-sync")
    assert again.stdout.strip() == "0 table(s) changed"


def test_bootstrap_sync_adds_new_focus_extension_columns(cli: CliEnv) -> None:
    # A FOCUS table made before x_price_source and x_cost_allocation existed: without them
    # sp_convert_to_focus's INSERT would fail on the next run.
    from warehouse.duckdb import duckdb_type
    from warehouse.schemas import FOCUS_TABLE_SCHEMAS, with_lineage

    assert cli("orgs", "create", "acme").returncode == 0
    assert cli("bootstrap").returncode == 0
    schema = with_lineage(FOCUS_TABLE_SCHEMAS["cost_data_standard_1_3"])
    old = [f for f in schema if f.name not in ("x_price_source", "x_cost_allocation")]
    con = duckdb.connect(str(cli.warehouse))
    columns = ", ".join(f'"{f.name}" {duckdb_type(f)}' for f in old)
    con.execute(f"CREATE TABLE acme_dev.cost_data_standard_1_3 ({columns})")
    con.close()

    synced = cli("bootstrap-sync")
    assert synced.returncode == 0, synced.stderr
    assert synced.stdout.strip().splitlines() == [
        "acme_dev.cost_data_standard_1_3: added x_price_source, x_cost_allocation",
        "1 table(s) changed",
    ]
    assert cli("bootstrap-sync").stdout.strip() == "0 table(s) changed"


def test_prices_check_lists_the_models_without_a_price(cli: CliEnv) -> None:
    from datetime import date

    from processors.genai.rows import usage_row, usage_table
    from tests.support.genai import step_context
    from warehouse.duckdb import DuckDBWarehouse

    for org in ("acme", "globex"):
        assert cli("orgs", "create", org).returncode == 0
    assert cli("bootstrap").returncode == 0
    warehouse = DuckDBWarehouse(cli.warehouse)
    jan = [date(2026, 1, d) for d in (2, 3, 5)]
    rows = [usage_row("openai", d, "t", model="acme-private-llm", input_tokens=5) for d in jan]
    rows += [usage_row("openai", jan[0], "t", model="gpt-4o-mini", input_tokens=5)]
    ctx = step_context(warehouse, {}, jan[0], jan[-1], org="acme", pipeline_id="p")
    ctx.write("genai_payg_usage_raw", usage_table(rows), date_column="usage_date")

    found = cli("prices", "check")
    assert found.returncode == 1, found.stderr
    assert found.stdout.splitlines()[1:] == [
        "acme_dev: openai/acme-private-llm: 3 usage row(s), 2026-01-02..2026-01-05"
    ]
    assert found.stdout.startswith("price data: genai-prices ")
    assert "1 model(s) without a price" in found.stderr

    clean = cli("prices", "check", "--org", "globex")
    assert clean.returncode == 0, clean.stderr
    assert clean.stdout.splitlines()[-1] == "every model in usage has a price"
    assert cli("prices", "check", "--org", "nobody").returncode != 0


def test_bootstrap_is_idempotent_and_scoped_by_org(cli: CliEnv) -> None:
    for slug in ("acme", "globex"):
        assert cli("orgs", "create", slug).returncode == 0
    only = cli("bootstrap", "--org", "globex")
    assert only.returncode == 0, only.stderr
    schemas = cli.duck("SELECT schema_name FROM information_schema.schemata ORDER BY 1")
    assert ("globex_dev",) in schemas
    assert ("acme_dev",) not in schemas
    again = cli("bootstrap")
    assert again.returncode == 0, again.stderr
    assert f"acme_dev: {TABLES} tables" in again.stdout
    assert f"globex_dev: {TABLES} tables" in again.stdout


def test_bootstrap_refuses_an_unknown_or_malformed_org(cli: CliEnv) -> None:
    assert cli("orgs", "create", "acme").returncode == 0

    unknown = cli("bootstrap", "--org", "initech")
    bad = cli("bootstrap", "--org", "Bad-Org")

    # Bad input exits non-zero with `error: ...` on stderr (README, CLI), not a traceback,
    # and creates no dataset for an org that does not exist.
    assert unknown.returncode == 1
    assert "error: org 'initech' not found" in unknown.stderr
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr
    assert "error:" in bad.stderr
    # The org check comes first, so the warehouse is not even opened.
    if cli.warehouse.exists():
        schemas = cli.duck("SELECT schema_name FROM information_schema.schemata")
        assert ("initech_dev",) not in schemas


def test_read_commands_on_a_fresh_database_fail_cleanly(cli: CliEnv) -> None:
    unknown = str(uuid.uuid4())

    status = cli("status", unknown)
    listed = cli("orgs", "list")

    assert status.returncode == 1
    assert "Traceback" not in status.stderr
    assert f"error: run {unknown} not found" in status.stderr
    assert "Traceback" not in listed.stderr


def insert_run(
    cli: CliEnv, run_id: str, key: str, status: str, deadline: str, day: str = "2026-03-01"
) -> None:
    con = sqlite3.connect(cli.db)
    with con:
        con.execute(
            "INSERT INTO org_meta_pipeline_runs (run_id, org_slug, pipeline_id, pipeline_path,"
            " status, idempotency_key, trigger, credential_id, start_date, end_date, params,"
            " created_at, deadline_at) VALUES (?, 'acme', 'demo_genai_usage', ?, ?, ?, 'cli',"
            " 'default', ?, ?, '{}', '2026-01-01 00:00:00.000000', ?)",
            (run_id, DEMO, status, key, day, day, deadline),
        )
    con.close()


def test_reap(demo: Demo) -> None:
    nothing = demo.cli("reap")
    assert nothing.returncode == 0, nothing.stderr
    assert nothing.stdout.strip() == "reaped 0 run(s)"

    stale = str(uuid.uuid4())
    insert_run(
        demo.cli,
        stale,
        "acme|demo_genai_usage|default|2026-03-01|2026-03-01",
        "queued",
        "2026-01-01 00:05:00.000000",
    )

    reaped = demo.cli("reap")

    assert reaped.returncode == 0, reaped.stderr
    assert reaped.stdout.strip() == f"reaped 1 run(s): {stale}"
    ((status, message),) = demo.cli.sql(
        "SELECT status, error_message FROM org_meta_pipeline_runs WHERE run_id = ?", stale
    )
    assert status == "failed"
    assert "waited in the queue" in message
    assert demo.cli("reap").stdout.strip() == "reaped 0 run(s)"
    # The completed demo run was left alone.
    assert demo.cli.sql(
        "SELECT status FROM org_meta_pipeline_runs WHERE run_id = ?", demo.run_id
    ) == [("completed",)]


def test_help_lists_the_commands(cli: CliEnv) -> None:
    result = cli("--help")
    assert result.returncode == 0
    for command in ("validate", "run", "status", "orgs", "bootstrap", "bootstrap-sync", "reap"):
        assert re.search(rf"^\s+{re.escape(command)}\s", result.stdout, re.M), command
    assert textwrap.dedent(result.stdout).startswith("Usage: pipeline-ops")
