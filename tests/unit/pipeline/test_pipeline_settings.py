"""Settings.from_env: embedded defaults, every documented variable, and bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.settings import ROOT, Settings


def test_defaults_live_under_the_var_dir(tmp_path: Path) -> None:
    var = tmp_path / "state"
    s = Settings.from_env({"PIPELINE_OPS_VAR_DIR": str(var)})

    assert s.var_dir == var.resolve()
    assert s.database_url == f"sqlite:///{var.resolve() / 'pipeline_ops.db'}"
    assert s.warehouse_url == f"duckdb:///{var.resolve() / 'warehouse.duckdb'}"
    assert s.redis_url == "redis://127.0.0.1:6379/0"
    assert s.configs_dir == (ROOT / "configs").resolve()
    assert s.env == "dev"
    assert s.admin_key is None
    assert s.master_key is None
    assert s.supabase_url is None
    assert s.supabase_service_role_key is None
    assert s.public_base_url == "http://127.0.0.1:8001"
    assert s.heartbeat_interval == 10
    assert s.heartbeat_timeout == 120
    assert s.queue_timeout == 3600
    assert s.time_limit_grace == 30
    assert s.max_body_bytes == 1048576
    assert s.eager is False
    assert s.log_level == "INFO"
    assert s.org_dataset("acme") == "acme_dev"
    assert s.project_id == "local"


def test_with_nothing_set_everything_is_under_the_working_directorys_var(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not next to the code: an installed package's location is no place for state.
    monkeypatch.chdir(tmp_path)
    s = Settings.from_env({})
    assert s.var_dir == tmp_path.resolve() / "var"
    assert s.database_url == f"sqlite:///{tmp_path.resolve() / 'var' / 'pipeline_ops.db'}"
    assert s.configs_dir == (ROOT / "configs").resolve()
    assert not (tmp_path / "var").exists()


def test_a_relative_var_dir_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    s = Settings.from_env({"PIPELINE_OPS_VAR_DIR": "rel/var"})
    assert s.var_dir == tmp_path.resolve() / "rel" / "var"
    assert s.database_url == f"sqlite:///{tmp_path.resolve() / 'rel' / 'var' / 'pipeline_ops.db'}"


def test_every_documented_variable_is_honoured(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": "postgresql://po:pw@db:5432/meta",
        "REDIS_URL": "redis://cache:6380/2",
        "WAREHOUSE_URL": "duckdb:///data/wh.duckdb",
        "PIPELINE_OPS_ENV": "prod",
        "PIPELINE_OPS_ADMIN_KEY": "admin-secret",
        "PIPELINE_OPS_MASTER_KEY": "master-secret",
        "SUPABASE_URL": "https://xyz.supabase.co",
        "SUPABASE_SERVICE_ROLE_KEY": "service-role",
        "PIPELINE_OPS_VAR_DIR": str(tmp_path / "v"),
        "PIPELINE_OPS_CONFIGS_DIR": str(tmp_path / "cfg"),
        "PIPELINE_OPS_PUBLIC_URL": "https://pipelines.example.com/",
        "PIPELINE_OPS_HEARTBEAT_INTERVAL": "3",
        "PIPELINE_OPS_HEARTBEAT_TIMEOUT": "45",
        "PIPELINE_OPS_QUEUE_TIMEOUT": "900",
        "PIPELINE_OPS_TIME_LIMIT_GRACE": "12",
        "PIPELINE_OPS_MAX_BODY_BYTES": "2048",
        "PIPELINE_OPS_EAGER": "1",
        "PIPELINE_OPS_LOG_LEVEL": "debug",
    }

    s = Settings.from_env(env)

    assert s.database_url == "postgresql://po:pw@db:5432/meta"
    assert s.redis_url == "redis://cache:6380/2"
    assert s.warehouse_url == "duckdb:///data/wh.duckdb"
    assert s.env == "prod"
    assert s.org_dataset("acme") == "acme_prod"
    assert s.admin_key == "admin-secret"
    assert s.master_key == "master-secret"
    assert s.supabase_url == "https://xyz.supabase.co"
    assert s.supabase_service_role_key == "service-role"
    assert s.var_dir == (tmp_path / "v").resolve()
    assert s.configs_dir == (tmp_path / "cfg").resolve()
    assert s.public_base_url == "https://pipelines.example.com"  # trailing / dropped
    assert s.heartbeat_interval == 3
    assert s.heartbeat_timeout == 45
    assert s.queue_timeout == 900
    assert s.time_limit_grace == 12
    assert s.max_body_bytes == 2048
    assert s.eager is True
    assert s.log_level == "DEBUG"


def test_from_env_without_an_argument_reads_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_OPS_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("PIPELINE_OPS_ENV", "stage")
    monkeypatch.setenv("PIPELINE_OPS_QUEUE_TIMEOUT", "77")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    s = Settings.from_env()
    assert s.env == "stage"
    assert s.queue_timeout == 77
    assert s.database_url == f"sqlite:///{tmp_path.resolve() / 'pipeline_ops.db'}"


@pytest.mark.parametrize(
    ("raw", "eager"),
    [("1", True), ("true", True), ("YES", True), ("0", False), ("", False), ("no", False)],
)
def test_eager_flag_values(raw: str, eager: bool) -> None:
    assert Settings.from_env({"PIPELINE_OPS_EAGER": raw}).eager is eager


def test_empty_values_fall_back_to_the_defaults(tmp_path: Path) -> None:
    s = Settings.from_env(
        {
            "PIPELINE_OPS_VAR_DIR": str(tmp_path),
            "DATABASE_URL": "",
            "PIPELINE_OPS_ADMIN_KEY": "",
            "PIPELINE_OPS_QUEUE_TIMEOUT": "",
        }
    )
    assert s.database_url == f"sqlite:///{tmp_path.resolve() / 'pipeline_ops.db'}"
    assert s.admin_key is None
    assert s.queue_timeout == 3600


@pytest.mark.parametrize("bad", ["production", "DEV", "test", " dev"])
def test_a_bad_env_name_raises_naming_the_variable(bad: str) -> None:
    with pytest.raises(ValueError, match="PIPELINE_OPS_ENV") as info:
        Settings.from_env({"PIPELINE_OPS_ENV": bad})
    assert repr(bad) in str(info.value)


@pytest.mark.parametrize(
    "name",
    [
        "PIPELINE_OPS_HEARTBEAT_INTERVAL",
        "PIPELINE_OPS_HEARTBEAT_TIMEOUT",
        "PIPELINE_OPS_QUEUE_TIMEOUT",
        "PIPELINE_OPS_TIME_LIMIT_GRACE",
        "PIPELINE_OPS_MAX_BODY_BYTES",
    ],
)
@pytest.mark.parametrize("raw", ["ten", "1.5", "30s"])
def test_a_non_integer_number_raises_naming_the_variable(name: str, raw: str) -> None:
    with pytest.raises(ValueError, match=f"{name} must be an integer, got '{raw}'"):
        Settings.from_env({name: raw})


def test_project_id_comes_from_a_bigquery_url() -> None:
    s = Settings.from_env({"WAREHOUSE_URL": "bigquery://my-project?location=US"})
    assert s.project_id == "my-project"
