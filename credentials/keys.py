"""Master keys: who wraps and unwraps the per-credential data keys.

The vault never sees a master key, only a `KeyProvider` that wraps and unwraps
data keys. That is the seam a cloud KMS plugs into: implement `current_key_id`,
`key_ids`, `wrap` and `unwrap` with the KMS's Encrypt/Decrypt calls (passing the
associated data as the KMS encryption context) and the master key never leaves
the KMS. The local providers below keep AES-256 keys in memory instead:

- `EnvKeyProvider`: `PIPELINE_OPS_MASTER_KEY`, base64 of 32 bytes. Several keys may
  be given comma-separated: the first seals, all of them open (key rotation).
- `FileKeyProvider`: the embedded default, `var/master.key` (created 0600 if
  missing) plus `var/master.keyring` holding older keys during a rotation.

A key id is a short hash of the key, so a wrong key is reported as a missing key
id rather than as a failed decryption.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from credentials.errors import KeyUnavailableError, MasterKeyError, UnwrapError

KEY_BYTES = 32
NONCE_BYTES = 12
KEY_FILE = "master.key"
KEYRING_FILE = "master.keyring"


class KeyProvider(Protocol):
    def current_key_id(self) -> str:
        """The id new data keys are wrapped under."""

    def key_ids(self) -> list[str]:
        """Every id this provider can unwrap (the current one first)."""

    def wrap(self, data_key: bytes, aad: bytes, key_id: str | None = None) -> tuple[str, bytes]:
        """Wrap a data key under `key_id` (default: current); returns (key id, wrapped)."""

    def unwrap(self, key_id: str, wrapped: bytes, aad: bytes) -> bytes:
        """The data key; KeyUnavailableError for an unknown id, UnwrapError if it fails."""


def key_id_of(key: bytes) -> str:
    # Domain-separated, truncated: identifies a key without being usable as one.
    return hashlib.sha256(b"pipeline-ops master key id\0" + key).hexdigest()[:16]


def generate_key() -> str:
    """A new master key, base64 (the format of PIPELINE_OPS_MASTER_KEY and the key file)."""
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()


def parse_key(text: str, source: str = "master key") -> bytes:
    """base64 of exactly 32 bytes; the error never echoes the value."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise MasterKeyError(f"{source} is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise MasterKeyError(f"{source} must be {KEY_BYTES} bytes base64-encoded, got {len(key)}")
    return key


def parse_keys(text: str, source: str) -> list[bytes]:
    """Comma- or newline-separated keys, in order; blank entries are ignored."""
    parts = [p for p in text.replace("\n", ",").split(",") if p.strip()]
    return [parse_key(p, f"{source} (entry {i})") for i, p in enumerate(parts, 1)]


class LocalKeyring:
    """AES-256-GCM key wrapping with keys held in memory: current first, then older ones."""

    def __init__(self, keys: Iterable[bytes]) -> None:
        self._set(list(keys))

    def _set(self, keys: list[bytes]) -> None:
        if not keys:
            raise MasterKeyError("no master key configured")
        self._keys = {key_id_of(k): k for k in reversed(keys)}  # current wins on duplicates
        self._current = key_id_of(keys[0])

    def current_key_id(self) -> str:
        return self._current

    def key_ids(self) -> list[str]:
        return [self._current, *(k for k in self._keys if k != self._current)]

    def material(self) -> list[bytes]:
        """The keys themselves, current first (for building a rotating keyring)."""
        return [self._keys[kid] for kid in self.key_ids()]

    def _key(self, key_id: str) -> bytes:
        key = self._keys.get(key_id)
        if key is None:
            held = ", ".join(self.key_ids())
            raise KeyUnavailableError(
                f"master key id {key_id} is not available (this process holds: {held}); "
                "configure the key this credential was sealed with"
            )
        return key

    def wrap(self, data_key: bytes, aad: bytes, key_id: str | None = None) -> tuple[str, bytes]:
        key_id = key_id or self.current_key_id()
        nonce = os.urandom(NONCE_BYTES)
        return key_id, nonce + AESGCM(self._key(key_id)).encrypt(nonce, data_key, aad)

    def unwrap(self, key_id: str, wrapped: bytes, aad: bytes) -> bytes:
        key = self._key(key_id)
        try:
            return AESGCM(key).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], aad)
        except (InvalidTag, ValueError):
            raise UnwrapError(
                f"the data key does not unwrap under master key id {key_id}: "
                "the wrapped key was altered, or the key behind this id is wrong"
            ) from None


class EnvKeyProvider(LocalKeyring):
    """Keys from PIPELINE_OPS_MASTER_KEY: `new` or, while rotating, `new,old`."""

    def __init__(self, value: str) -> None:
        super().__init__(parse_keys(value, "PIPELINE_OPS_MASTER_KEY"))


# -- the embedded default: key files under var/ ------------------------------------------


def write_secret_file(path: Path, text: str, *, replace: bool = True) -> bool:
    """Write `text` to `path` with mode 0600, atomically (temp file, fsync, rename).

    With replace=False an existing file wins and False is returned: two processes
    starting at once must agree on one key, never overwrite each other's.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if the file exists: first writer wins
            except FileExistsError:
                return False
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def read_secret_file(path: Path) -> str:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        # Like ssh: a key others can read is not a secret; refuse rather than use it.
        raise MasterKeyError(f"{path} is readable by others (mode {oct(mode & 0o777)}): chmod 600")
    return path.read_text(encoding="ascii")


class FileKeyProvider(LocalKeyring):
    """`var/master.key` (the current key) and `var/master.keyring` (older keys, one a line).

    Files are re-read when they change, so a long-running worker picks up a key
    installed by `credentials rotate-master` without a restart.
    """

    def __init__(self, var_dir: Path, *, create: bool = True) -> None:
        self.key_path = Path(var_dir) / KEY_FILE
        self.keyring_path = Path(var_dir) / KEYRING_FILE
        self._create = create
        self._signature: tuple[tuple[int, int], ...] | None = None
        self._lock = threading.Lock()
        self._load()

    def _stat(self) -> tuple[tuple[int, int], ...]:
        out = []
        for path in (self.key_path, self.keyring_path):
            try:
                st = path.stat()
                out.append((st.st_mtime_ns, st.st_ino))
            except FileNotFoundError:
                out.append((0, 0))
        return tuple(out)

    def _load(self) -> None:
        with self._lock:
            if not self.key_path.exists():
                if not self._create:
                    raise MasterKeyError(f"no master key file at {self.key_path}")
                write_secret_file(self.key_path, generate_key() + "\n", replace=False)
            signature = self._stat()
            if signature == self._signature:
                return
            keys = parse_keys(read_secret_file(self.key_path), str(self.key_path))[:1]
            if self.keyring_path.exists():
                keys += parse_keys(read_secret_file(self.keyring_path), str(self.keyring_path))
            self._set(keys)
            self._signature = signature

    def current_key_id(self) -> str:
        self._load()
        return super().current_key_id()

    def unwrap(self, key_id: str, wrapped: bytes, aad: bytes) -> bytes:
        if key_id not in self._keys:
            self._load()  # perhaps rotated by another process since we last looked
        return super().unwrap(key_id, wrapped, aad)

    def old_keys(self) -> list[bytes]:
        """The keyring's keys (everything but the current key)."""
        self._load()
        return self.material()[1:]

    def install(self, new_key: bytes) -> None:
        """Make `new_key` current; the old current key moves to the keyring first.

        Order matters for a crash in between: the keyring is written before the key
        file is replaced, so no key is ever held by neither file.
        """
        self._load()
        if key_id_of(new_key) == self._current:
            return
        keep = self.material()
        lines = [base64.b64encode(k).decode() for k in keep if k != new_key]
        write_secret_file(self.keyring_path, "\n".join(lines) + "\n")
        write_secret_file(self.key_path, base64.b64encode(new_key).decode() + "\n")
        self._load()

    def prune(self, keep_ids: Iterable[str]) -> list[str]:
        """Drop keyring keys whose id is not in `keep_ids`; returns the dropped ids."""
        self._load()
        keep = set(keep_ids)
        old = {key_id_of(k): k for k in self.old_keys()}
        dropped = [kid for kid in old if kid not in keep]
        if dropped:
            kept = [base64.b64encode(k).decode() for kid, k in old.items() if kid in keep]
            if kept:
                write_secret_file(self.keyring_path, "\n".join(kept) + "\n")
            else:
                self.keyring_path.unlink(missing_ok=True)
            self._load()
        return dropped


class LazyKeys:
    """Builds the real provider on first use, so merely building services (API, tests)
    neither reads key material nor creates a key file."""

    def __init__(self, factory: Callable[[], KeyProvider]) -> None:
        self._factory = factory
        self._provider: KeyProvider | None = None
        self._lock = threading.Lock()

    def get(self) -> KeyProvider:
        with self._lock:
            if self._provider is None:
                self._provider = self._factory()
            return self._provider

    def current_key_id(self) -> str:
        return self.get().current_key_id()

    def key_ids(self) -> list[str]:
        return self.get().key_ids()

    def wrap(self, data_key: bytes, aad: bytes, key_id: str | None = None) -> tuple[str, bytes]:
        return self.get().wrap(data_key, aad, key_id)

    def unwrap(self, key_id: str, wrapped: bytes, aad: bytes) -> bytes:
        return self.get().unwrap(key_id, wrapped, aad)


def key_provider(master_key: str | None, var_dir: Path) -> KeyProvider:
    """PIPELINE_OPS_MASTER_KEY when set, else the key file under `var_dir` (lazily)."""
    if master_key:
        return LazyKeys(lambda: EnvKeyProvider(master_key))
    return LazyKeys(lambda: FileKeyProvider(var_dir))
