"""The keyring: one random 256-bit key per database and purpose, stored only wrapped by the master key.

`keyring.json` in the data directory maps key names (``control``, ``audit``, ``ws/<id>/test`` ...)
to AES-KW-wrapped keys. Rotating the master key re-wraps this file and nothing else.
Writers take an exclusive file lock so the CLI and a running server can both add keys.
"""

from __future__ import annotations

import fcntl
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from appliance.storage import crypto

KEYRING_FILE = "keyring.json"
LOCK_FILE = "keyring.lock"


class Keyring:
    def __init__(self, data_dir: Path, master_key: bytes) -> None:
        self.data_dir = data_dir
        self._master = master_key
        self._keys: dict[str, bytes] = {}
        self._mutex = threading.Lock()
        if (data_dir / KEYRING_FILE).exists():
            self._load()

    @property
    def path(self) -> Path:
        return self.data_dir / KEYRING_FILE

    def _load(self) -> None:
        doc = json.loads(self.path.read_text())
        try:
            self._keys = {name: crypto.unwrap(self._master, bytes.fromhex(w)) for name, w in doc["keys"].items()}
        except crypto.KeyProblem:
            # the master key may have been rotated by `appliance keys rotate-master` meanwhile
            # (only for a keyring that opened once: a wrong master key at start stays an error)
            fresh = crypto.reread_master_key(self.data_dir) if self._keys else None
            if fresh is None or fresh == self._master:
                raise
            self._master = fresh
            self._keys = {name: crypto.unwrap(fresh, bytes.fromhex(w)) for name, w in doc["keys"].items()}

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        with open(self.data_dir / LOCK_FILE, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _save(self) -> None:
        doc = {
            "version": 1,
            "keys": {name: crypto.wrap(self._master, key).hex() for name, key in sorted(self._keys.items())},
        }
        crypto.write_secret_file(self.path, json.dumps(doc, indent=1).encode())

    def get(self, name: str) -> bytes:
        """Return a key, re-reading the file once if another process added it meanwhile."""
        with self._mutex:
            key = self._keys.get(name)
            if key is None and self.path.exists():
                self._load()
                key = self._keys.get(name)
        if key is None:
            raise crypto.KeyProblem(f"no key named {name!r} in the keyring")
        return key

    def has(self, name: str) -> bool:
        try:
            self.get(name)
        except crypto.KeyProblem:
            return False
        return True

    def create(self, name: str) -> bytes:
        """Create a key if it does not exist yet and return it (idempotent)."""
        with self._mutex, self._file_lock():
            if self.path.exists():
                self._load()
            if name not in self._keys:
                self._keys[name] = crypto.new_key()
                self._save()
            return self._keys[name]

    def replace(self, name: str, key: bytes) -> None:
        with self._mutex, self._file_lock():
            if self.path.exists():
                self._load()
            self._keys[name] = key
            self._save()

    def remove(self, name: str) -> None:
        with self._mutex, self._file_lock():
            if self.path.exists():
                self._load()
            if self._keys.pop(name, None) is not None:
                self._save()

    def rewrap(self, new_master: bytes) -> None:
        """Master-key rotation: the same keys, wrapped by a new master key."""
        with self._mutex, self._file_lock():
            self._load()
            self._master = new_master
            self._save()

    def names(self) -> list[str]:
        with self._mutex:
            return sorted(self._keys)
