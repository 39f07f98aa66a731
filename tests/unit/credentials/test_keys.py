"""Master key providers: the env variable, the embedded key file, several keys at once."""

from __future__ import annotations

import base64
import os
import stat
import threading
from pathlib import Path

import pytest

from credentials.crypto import open_sealed, seal
from credentials.errors import KeyUnavailableError, MasterKeyError
from credentials.keys import (
    KEY_FILE,
    KEYRING_FILE,
    EnvKeyProvider,
    FileKeyProvider,
    LazyKeys,
    generate_key,
    key_id_of,
    key_provider,
)

SECRET = {"api_key": "sk-keys-test-000000"}


def kid(text: str) -> str:
    return key_id_of(base64.b64decode(text))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not base64 at all!", "not valid base64"),
        (base64.b64encode(b"x" * 16).decode(), "must be 32 bytes"),
        ("", "no master key configured"),
    ],
)
def test_a_bad_env_key_is_refused_without_echoing_it(value: str, message: str) -> None:
    with pytest.raises(MasterKeyError, match=message) as info:
        EnvKeyProvider(value)
    if value:
        assert value not in str(info.value)


def test_the_first_env_key_seals_and_every_listed_key_opens() -> None:
    old, new = generate_key(), generate_key()
    sealed_old = seal(EnvKeyProvider(old), "acme", "c", "openai", SECRET)

    both = EnvKeyProvider(f"{new}, {old}")

    assert both.current_key_id() == kid(new)
    assert both.key_ids() == [kid(new), kid(old)]
    assert open_sealed(both, "acme", "c", "openai", sealed_old) == SECRET
    assert seal(both, "acme", "c", "openai", SECRET).key_id == kid(new)
    with pytest.raises(KeyUnavailableError):
        open_sealed(EnvKeyProvider(new), "acme", "c", "openai", sealed_old)


def test_the_key_file_is_created_0600_and_reused(tmp_path: Path) -> None:
    first = FileKeyProvider(tmp_path / "var")
    path = tmp_path / "var" / KEY_FILE

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = FileKeyProvider(tmp_path / "var")
    assert again.current_key_id() == first.current_key_id()
    assert kid(path.read_text()) == first.current_key_id()


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    ids: list[str] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        ids.append(FileKeyProvider(tmp_path).current_key_id())

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 1
    assert [p.name for p in tmp_path.iterdir()] == [KEY_FILE]  # no temp files left


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    FileKeyProvider(tmp_path)
    os.chmod(tmp_path / KEY_FILE, 0o644)
    with pytest.raises(MasterKeyError, match=r"readable by others.*chmod 600"):
        FileKeyProvider(tmp_path)


def test_without_create_a_missing_key_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(MasterKeyError, match="no master key file"):
        FileKeyProvider(tmp_path, create=False)


def test_install_keeps_the_old_key_in_the_keyring_until_pruned(tmp_path: Path) -> None:
    keys = FileKeyProvider(tmp_path)
    old_id = keys.current_key_id()
    sealed = seal(keys, "acme", "c", "openai", SECRET)
    new = generate_key()

    keys.install(base64.b64decode(new))

    assert keys.current_key_id() == kid(new)
    assert stat.S_IMODE((tmp_path / KEYRING_FILE).stat().st_mode) == 0o600
    reader = FileKeyProvider(tmp_path)  # another process, reading the files fresh
    assert reader.key_ids() == [kid(new), old_id]
    assert open_sealed(reader, "acme", "c", "openai", sealed) == SECRET

    assert keys.prune(keep_ids=[old_id]) == []  # still in use: kept
    assert keys.prune(keep_ids=[]) == [old_id]
    assert not (tmp_path / KEYRING_FILE).exists()
    assert FileKeyProvider(tmp_path).key_ids() == [kid(new)]


def test_a_running_process_picks_up_a_key_installed_by_another(tmp_path: Path) -> None:
    worker = FileKeyProvider(tmp_path)  # e.g. a long-lived worker
    operator = FileKeyProvider(tmp_path)
    operator.install(base64.b64decode(generate_key()))
    sealed = seal(operator, "acme", "c", "openai", SECRET)  # under the new key

    assert open_sealed(worker, "acme", "c", "openai", sealed) == SECRET
    assert worker.current_key_id() == operator.current_key_id()


def test_key_provider_prefers_the_env_key_and_is_lazy(tmp_path: Path) -> None:
    env_key = generate_key()
    from_env = key_provider(env_key, tmp_path)
    from_file = key_provider(None, tmp_path)

    assert isinstance(from_env, LazyKeys) and isinstance(from_file, LazyKeys)
    assert not (tmp_path / KEY_FILE).exists()  # nothing read or created yet
    assert from_env.current_key_id() == kid(env_key)
    assert not (tmp_path / KEY_FILE).exists()
    assert from_file.current_key_id() == kid((tmp_path / KEY_FILE).read_text())
