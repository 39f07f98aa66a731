"""`pipeline-ops credentials …` and `orgs rotate-key/revoke-key`, in process (CliRunner)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli import main
from credentials.keys import KEY_FILE, generate_key
from pipeline.orgs.service import OrgService
from pipeline.storage.db import make_engine, upgrade
from pipeline.storage.run_store import SqlRunStore

SECRET = "sk-cli-secret-value-0123456789"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    var = tmp_path / "var"
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("PIPELINE_OPS_VAR_DIR", str(var))
    monkeypatch.delenv("PIPELINE_OPS_MASTER_KEY", raising=False)
    upgrade(url)
    return var


@pytest.fixture
def orgs(env: Path, tmp_path: Path) -> OrgService:
    service = OrgService(SqlRunStore(make_engine(f"sqlite:///{tmp_path / 'meta.db'}")))
    service.create("acme")
    return service


def cli(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def test_add_reads_the_secret_from_stdin_and_never_prints_it(orgs: OrgService, env: Path) -> None:
    result = cli(
        "credentials", "add", "--org", "acme", "openai", "--name", "Prod key", input=SECRET
    )

    assert result.exit_code == 0, result.output
    assert "stored credential 'prod_key' for acme (openai)" in result.output
    assert SECRET not in result.output
    assert stat.S_IMODE((env / KEY_FILE).stat().st_mode) == 0o600  # embedded default key

    listed = cli("credentials", "list")
    assert "acme\tprod_key\topenai\tProd key\t" in listed.output
    assert SECRET not in listed.output
    assert SECRET not in cli("credentials", "list", "--org", "acme", "--json").output


def test_add_reads_a_json_secret_from_a_file(
    orgs: OrgService, env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "key.json"
    path.write_text('{"admin_key": "k-file-0000001", "base_url": "http://127.0.0.1:1"}')
    result = cli(
        "credentials",
        "add",
        "--org",
        "acme",
        "openai",
        "--name",
        "K",
        "--id",
        "k",
        "--file",
        str(path),
    )
    assert result.exit_code == 0, result.output

    assert _vault(orgs, env).get("acme", "k") == {
        "admin_key": "k-file-0000001",
        "base_url": "http://127.0.0.1:1",
    }


def _vault(orgs: OrgService, env: Path):  # type: ignore[no-untyped-def]
    from credentials.keys import key_provider
    from credentials.vault import VaultCredentialProvider

    return VaultCredentialProvider(orgs.store.engine, key_provider(None, env))


def test_a_plain_key_goes_into_the_field_the_provider_declares(orgs: OrgService, env: Path) -> None:
    result = cli(
        "credentials", "add", "--org", "acme", "anthropic", "--name", "A", "--id", "a", input=SECRET
    )

    assert result.exit_code == 0, result.output
    assert _vault(orgs, env).get("acme", "a") == {"admin_key": SECRET}


@pytest.mark.parametrize(
    ("provider", "stdin", "message"),
    [
        ("openai", '{"admin_kye": "sk-typo-000000000"}', "unknown field(s) admin_kye"),
        ("aws", '{"access_key_id": "AKIA"}', "missing field(s) secret_access_key"),
        ("aws", SECRET, "must be a JSON object, not plain text; a credential of provider aws"),
        ("gcp", '{"api_key": "k-0000001"}', "unknown field(s) api_key"),
        ("demo", SECRET, "provider demo takes no credential"),
        ("Open AI", SECRET, "provider 'Open AI' is not in providers.yml"),
        ("openai", "", "the secret is empty"),
    ],
)
def test_secrets_that_do_not_fit_the_provider_exit_2_and_store_nothing(
    orgs: OrgService, env: Path, provider: str, stdin: str, message: str
) -> None:
    result = CliRunner().invoke(
        main, ["credentials", "add", "--org", "acme", provider, "--name", "x"], input=stdin
    )

    assert result.exit_code == 2, result.output
    assert message in result.output
    assert SECRET not in result.output
    assert _vault(orgs, env).list() == []


def test_there_is_no_way_to_pass_a_secret_on_the_command_line(orgs: OrgService) -> None:
    result = CliRunner().invoke(
        main, ["credentials", "add", "--org", "acme", "openai", "--name", "x", "--secret", SECRET]
    )
    assert result.exit_code == 2 and "No such option" in result.output


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (
            ("credentials", "add", "--org", "nosuchorg", "openai", "--name", "x"),
            SECRET,
            "org 'nosuchorg' not found",
        ),
        (("credentials", "disable", "--org", "acme", "nope"), None, "'nope' not found"),
        (("credentials", "delete", "--org", "acme", "nope"), None, "'nope' not found"),
        (("orgs", "rotate-key", "--org", "nosuchorg"), None, "org 'nosuchorg' not found"),
    ],
)
def test_errors_exit_1_with_a_message(
    orgs: OrgService, args: tuple[str, ...], stdin: str | None, message: str
) -> None:
    result = CliRunner().invoke(main, list(args), input=stdin)
    assert result.exit_code == 1
    assert message in result.output
    assert SECRET not in result.output


def test_disable_enable_delete(orgs: OrgService) -> None:
    cli("credentials", "add", "--org", "acme", "openai", "--name", "k", "--id", "k", input=SECRET)
    assert "\tdisabled\t" in cli("credentials", "disable", "--org", "acme", "k").output
    assert "\tenabled\t" in cli("credentials", "enable", "--org", "acme", "k").output
    assert (
        "deleted credential 'k' of acme"
        in cli("credentials", "delete", "--org", "acme", "k").output
    )
    assert "acme\tk" not in cli("credentials", "list").output


def test_generate_key_writes_a_0600_file_once(tmp_path: Path) -> None:
    out = tmp_path / "new.key"
    assert cli("credentials", "generate-key", "--out", str(out)).exit_code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    again = CliRunner().invoke(main, ["credentials", "generate-key", "--out", str(out)])
    assert again.exit_code == 1 and "already exists" in again.output
    assert len(cli("credentials", "generate-key").output.strip()) == len(generate_key())


def test_orgs_rotate_and_revoke_key(orgs: OrgService) -> None:
    old = orgs.rotate_key("acme")["api_key"]

    rotated = cli("orgs", "rotate-key", "--org", "acme", "--overlap-seconds", "600")

    assert rotated.exit_code == 0, rotated.output
    new = next(line.split(": ", 1)[1] for line in rotated.output.splitlines() if "api_key" in line)
    assert orgs.authenticate(new) == "acme" and orgs.authenticate(old) == "acme"
    assert "previous key valid until: " in rotated.output

    assert (
        "revoked previous key of acme"
        in cli("orgs", "revoke-key", "--org", "acme", "--previous-only").output
    )
    assert orgs.authenticate(old) is None and orgs.authenticate(new) == "acme"
    assert "revoked all keys of acme" in cli("orgs", "revoke-key", "--org", "acme").output
    assert orgs.authenticate(new) is None
