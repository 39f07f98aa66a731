"""Master-key rotation: every data key re-wrapped, ciphertexts untouched, resumable.

The interrupted rotation is the real CLI in a subprocess, SIGKILLed part-way
through; the second run must finish the job with no credential lost.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select

from credentials.crypto import seal
from credentials.errors import KeyUnavailableError
from credentials.keys import (
    KEY_FILE,
    KEYRING_FILE,
    EnvKeyProvider,
    FileKeyProvider,
    LocalKeyring,
    generate_key,
    key_id_of,
)
from credentials.models import org_credentials
from credentials.rotation import key_id_counts, rewrap_all, rotating_keys
from credentials.vault import VaultCredentialProvider

ROOT = Path(__file__).resolve().parents[3]
CLI = Path(sys.executable).parent / "pipeline-ops"


def secret(i: int) -> dict[str, str]:
    return {"api_key": f"rot-secret-{i:05d}-abcdef"}


def sealed_rows(engine: Engine, columns: tuple[str, ...]) -> dict[tuple[str, str], tuple]:
    query = select(
        org_credentials.c.org_slug,
        org_credentials.c.credential_id,
        *(org_credentials.c[c] for c in columns),
    )
    with engine.connect() as conn:
        return {(r[0], r[1]): tuple(r[2:]) for r in conn.execute(query).all()}


def bulk_add(engine: Engine, keys: LocalKeyring, count: int) -> None:
    """Many credentials in one transaction (the vault's add commits one at a time)."""
    now = datetime.now(UTC)
    rows = []
    for i in range(count):
        org = "acme" if i % 2 else "globex"
        s = seal(keys, org, f"c{i:05d}", "openai", secret(i))
        rows.append(
            {
                "org_slug": org,
                "credential_id": f"c{i:05d}",
                "provider": "openai",
                "name": f"credential {i}",
                "key_id": s.key_id,
                "wrapped_key": s.wrapped_key,
                "nonce": s.nonce,
                "ciphertext": s.ciphertext,
                "enabled": True,
                "created_at": now,
            }
        )
    with engine.begin() as conn:
        conn.execute(insert(org_credentials), rows)


def assert_all_open(engine: Engine, keys: LocalKeyring, count: int) -> None:
    vault = VaultCredentialProvider(engine, keys)
    for i in range(count):
        org = "acme" if i % 2 else "globex"
        assert vault.get(org, f"c{i:05d}") == secret(i)


def test_rotation_rewraps_every_data_key_and_nothing_else(engine: Engine) -> None:
    old, new = generate_key(), generate_key()
    bulk_add(engine, EnvKeyProvider(old), 30)
    before = sealed_rows(engine, ("nonce", "ciphertext", "wrapped_key"))

    keys, new_id = rotating_keys(EnvKeyProvider(old), base64.b64decode(new))
    report = rewrap_all(engine, keys, new_id, batch=7)  # several batches

    assert (report.rewrapped, report.already_current, report.failed) == (30, 0, [])
    assert key_id_counts(engine) == {new_id: 30}
    after = sealed_rows(engine, ("nonce", "ciphertext", "wrapped_key"))
    for key, (nonce, ciphertext, wrapped) in after.items():
        assert (nonce, ciphertext) == before[key][:2]  # the ciphertext is not re-encrypted
        assert wrapped != before[key][2]
    assert_all_open(engine, EnvKeyProvider(new), 30)  # the new key alone opens everything
    with pytest.raises(KeyUnavailableError):
        VaultCredentialProvider(engine, EnvKeyProvider(old)).get("acme", "c00001")

    again = rewrap_all(engine, keys, new_id)
    assert (again.rewrapped, again.already_current) == (0, 30)


def test_rows_the_keys_cannot_open_are_reported_and_the_rest_rotated(engine: Engine) -> None:
    lost, old, new = generate_key(), generate_key(), generate_key()
    bulk_add(engine, EnvKeyProvider(old), 4)
    vault = VaultCredentialProvider(engine, EnvKeyProvider(lost))
    vault.add("acme", "openai", "Sealed under a key nobody has", secret(99), "orphan")

    keys, new_id = rotating_keys(EnvKeyProvider(old), base64.b64decode(new))
    report = rewrap_all(engine, keys, new_id)

    assert report.rewrapped == 4 and not report.done
    ((org, cred, why),) = report.failed
    assert (org, cred) == ("acme", "orphan")
    assert f"master key id {key_id_of(base64.b64decode(lost))} is not available" in why
    assert "rot-secret" not in why


def test_the_key_file_rotation_keeps_old_rows_open_while_it_runs(
    engine: Engine, tmp_path: Path
) -> None:
    keys = FileKeyProvider(tmp_path)
    old_id = keys.current_key_id()
    bulk_add(engine, keys, 5)
    new = base64.b64decode(generate_key())

    rotating, new_id = rotating_keys(keys, new)

    # Installed before any row moved: another process already opens old and new ids.
    other = FileKeyProvider(tmp_path)
    assert other.key_ids() == [new_id, old_id]
    assert_all_open(engine, other, 5)
    rewrap_all(engine, rotating, new_id)
    assert key_id_counts(engine) == {new_id: 5}
    assert keys.prune(keep_ids=[]) == [old_id]
    assert_all_open(engine, FileKeyProvider(tmp_path), 5)


# -- interrupted and resumed, through the CLI -----------------------------------------------


@pytest.fixture
def cli_env(db_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "PIPELINE_OPS_VAR_DIR": str(tmp_path / "var"),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("PIPELINE_OPS_MASTER_KEY", None)
    yield env


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_a_rotation_killed_midway_resumes_and_loses_nothing(
    engine: Engine, cli_env: dict[str, str], tmp_path: Path
) -> None:
    total = 1000
    var = tmp_path / "var"
    keys = FileKeyProvider(var)
    old_id = keys.current_key_id()
    bulk_add(engine, keys, total)
    new_key_file = tmp_path / "new.key"
    new_key = generate_key()
    new_key_file.write_text(new_key + "\n")
    new_id = key_id_of(base64.b64decode(new_key))

    proc = subprocess.Popen(
        [str(CLI), "credentials", "rotate-master", "--new-key-file", str(new_key_file)],
        env=cli_env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    for line in proc.stdout:  # kill it right after its first progress report
        if "re-wrapped 100" in line or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL

    counts = key_id_counts(engine)
    assert 0 < counts.get(new_id, 0) < total, counts  # genuinely interrupted midway
    assert counts[old_id] == total - counts[new_id]
    # Mid-rotation every credential still opens: new ids with the new key, old ids
    # with the old key kept in the keyring file.
    assert (var / KEYRING_FILE).exists()
    assert_all_open(engine, FileKeyProvider(var), total)

    resumed = run_cli(cli_env, "credentials", "rotate-master", "--new-key-file", str(new_key_file))

    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"re-wrapped {total - counts[new_id]}, already on {new_id}: {counts[new_id]}" in (
        resumed.stdout
    )
    assert key_id_counts(engine) == {new_id: total}
    assert not (var / KEYRING_FILE).exists()  # old key dropped once nothing uses it
    assert key_id_of(base64.b64decode((var / KEY_FILE).read_text())) == new_id
    assert_all_open(engine, EnvKeyProvider(new_key), total)  # the new key alone suffices


def test_rotate_master_reads_the_key_from_stdin_and_warns_about_argv(
    engine: Engine, cli_env: dict[str, str], master_key: str
) -> None:
    env = {**cli_env, "PIPELINE_OPS_MASTER_KEY": master_key}
    bulk_add(engine, EnvKeyProvider(master_key), 3)
    first, second = generate_key(), generate_key()

    piped = subprocess.run(
        [str(CLI), "credentials", "rotate-master", "--new-key", "-"],
        input=first + "\n",
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert piped.returncode == 0, piped.stderr
    assert "warning" not in piped.stderr
    assert "set PIPELINE_OPS_MASTER_KEY" in piped.stdout
    assert first not in piped.stdout + piped.stderr

    env["PIPELINE_OPS_MASTER_KEY"] = f"{first},{master_key}"
    literal = run_cli(env, "credentials", "rotate-master", "--new-key", second)
    assert literal.returncode == 0, literal.stderr
    assert "visible in ps and shell history" in literal.stderr
    assert_all_open(engine, EnvKeyProvider(second), 3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "exactly one of"),
        (("--new-key", "-", "--new-key-file", "x"), "exactly one of"),
        (("--new-key", "not-a-key"), "not valid base64"),
    ],
)
def test_rotate_master_refuses_bad_arguments(
    cli_env: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    result = run_cli(cli_env, "credentials", "rotate-master", *args)
    assert result.returncode != 0
    assert message in result.stderr
