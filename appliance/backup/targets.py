"""What the backup layer is handed, and the lock every backup job holds.

The application builds one `Backups` (appliance.runtime does): the covered databases as `Target`s
and a way to open each, the keyring, the backup root and the settings. Nothing in
`appliance.backup` imports the application.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from appliance.storage.database import Database, StorageError
from appliance.storage.diskfull import DiskMonitor
from appliance.storage.keyring import Keyring
from appliance.storage.objects import KeyStore

SERVE_LOCK = "serve.lock"  # held by a running server (see service.BackupService.start)


class RestoreError(StorageError):
    """A restore or verification cannot be carried out."""


@dataclass(frozen=True)
class Target:
    """One covered database."""

    name: str  # backup directory name: control | ws<id>-<env>
    key_name: str  # the database key in the keyring
    rel_path: str  # relative to the data directory
    workspace_id: int | None = None
    environment: str | None = None


@dataclass
class Backups:
    """Everything the backup jobs work on, handed to them by the application."""

    data_dir: Path
    keyring: Keyring
    disk: DiskMonitor
    path: Path  # the backup root; created on first use (see `root`)
    retention_days: float
    snapshot_interval_hours: float
    ship_interval_seconds: float
    list_targets: Callable[[], list[Target]]  # every covered database that exists now
    open_database: Callable[[Target], Database]  # the live database of a target (opened once)
    open_keystore: Callable[[], KeyStore]  # the key store: erasure ledger, subject keys
    # SQLCipher files outside point-in-time recovery that a restore into a new directory copies
    # as they are now: (path relative to the data directory, key name)
    copied_along: tuple[tuple[str, str], ...] = ()

    @property
    def root(self) -> Path:
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.path

    @property
    def keystore(self) -> KeyStore:
        return self.open_keystore()

    def targets(self) -> list[Target]:
        return self.list_targets()

    def find(self, name: str) -> Target:
        found = self.targets()
        for t in found:
            if t.name == name:
                return t
        raise RestoreError(f"no database named {name!r} (names: {', '.join(t.name for t in found)})")

    def environment(self, workspace_id: int, environment: str) -> Database:
        return self.open_database(
            Target(f"ws{workspace_id}-{environment}", "", "", workspace_id, environment)
        )


def server_running(data_dir: Path) -> bool:
    """Whether a server holds `serve.lock` on this data directory."""
    path = data_dir / SERVE_LOCK
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


class BackupLock:
    """Serialises shipping, snapshots, scrubs and pruning on one backup root: re-entrant within a
    thread, exclusive across threads and processes (flock on `.lock`)."""

    _locks: dict[Path, BackupLock] = {}
    _guard = threading.Lock()

    def __init__(self, root: Path) -> None:
        self.path = root / ".lock"
        self._rlock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    @classmethod
    def of(cls, root: Path) -> BackupLock:
        with cls._guard:
            lock = cls._locks.get(root.resolve())
            if lock is None:
                lock = cls._locks[root.resolve()] = BackupLock(root)
            return lock

    def __enter__(self) -> BackupLock:
        self._rlock.acquire()
        if self._depth == 0:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._fd = fd
        self._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        self._rlock.release()
