"""The opened appliance: keys, databases and the audit log, shared by the CLI and the server.

Data directory layout:
    appliance.toml              configuration
    master.key | master.salt    the master key (0600), or the salt of a sealed (passphrase) start
    keyring.json                every database key, wrapped by the master key
    control.db                  workspaces, API-key hashes, settings
    audit.db  audit.head        the audit log and its last anchored head
    workspaces/<id>/test.db     one database per workspace environment
    workspaces/<id>/production.db
    tls/                        certificate and key (self-signed at init if asked)
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from appliance import config
from appliance.backup.targets import Backups, RestoreError, Target
from appliance.courses.demo import seed_demo_course
from appliance.security import apikeys
from appliance.security import secrets as operator_secrets
from appliance.security.audit import MAC_KEY, AuditEvent, AuditLog
from appliance.storage import crypto, rotation, schema
from appliance.storage.database import Database, StorageError, check_encrypted
from appliance.storage.diskfull import DiskMonitor
from appliance.storage.keyring import Keyring
from appliance.storage.objects import KEYSTORE_KEY, KeyStore
from appliance.workspaces import service
from appliance.workspaces.service import ENVIRONMENTS, environment_key_name

CONTROL_KEY = "control"
AUDIT_KEY = "audit"
METRICS_TOKEN_SETTING = "metrics_token_hash"  # noqa: S105 - a settings key, not a secret


class Runtime:
    def __init__(self, settings: config.Settings, master_key: bytes) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir
        self.keyring = Keyring(self.data_dir, master_key)
        self.check_files()
        # disk-full episodes (storage.diskfull): shared by every database this process opens
        self.disk = DiskMonitor(self.data_dir, int(settings.storage.disk_reserve_mb * 1024 * 1024))
        self.disk.check_at_start()
        sync = settings.storage.synchronous.upper()
        self.control = self._open(self.data_dir / "control.db", CONTROL_KEY, "control", "control", {})
        audit_db = self._open(self.data_dir / "audit.db", AUDIT_KEY, "audit", "audit", {})
        audit_db.refuse_when_full = False  # keeps recording (into the reserve) while the disk is full
        self.audit = AuditLog(audit_db, self.keyring.get(MAC_KEY), self.data_dir)
        self.pepper = self.keyring.get(apikeys.PEPPER_KEY)
        # remote AI engines' api keys: from the keyring or the environment, never the config file
        settings.ai = operator_secrets.attach_remote_api_keys(settings.ai, self.keyring, os.environ)
        self._environments: dict[tuple[int, str], Database] = {}
        self._env_lock = threading.Lock()
        self._sync = sync
        self.closers: list[Callable[[], None]] = []  # run first by close()
        self._keystore: KeyStore | None = None

    def _open(self, path: Path, key_name: str, name: str, kind: str, meta: dict[str, str]) -> Database:
        check_encrypted(path)
        key = self.keyring.get(key_name)
        storage = self.settings.storage
        database = Database(
            path,
            key,
            name=name,
            synchronous=storage.synchronous.upper(),
            busy_timeout_ms=storage.busy_timeout_ms,
        )
        try:
            schema.migrate(database, kind, meta)
        except Exception:
            database.close()
            raise
        # after the start-up writes (schema check, capture triggers): on a disk that was full at
        # start they use the released reserve (DiskMonitor.check_at_start) rather than being refused
        database.disk = self.disk
        return database

    def check_files(self) -> None:
        """Start-up check: every database file must be encrypted (none may open without a key)."""
        for path in sorted(self.data_dir.rglob("*.db")):
            check_encrypted(path)

    # -- environments ----------------------------------------------------------------------------
    def environment_path(self, workspace_id: int, environment: str) -> Path:
        return self.data_dir / "workspaces" / str(workspace_id) / f"{environment}.db"

    def environment(self, workspace_id: int, environment: str, *, create: bool = False) -> Database:
        if environment not in ENVIRONMENTS:
            raise StorageError(f"unknown environment {environment!r}")
        with self._env_lock:
            database = self._environments.get((workspace_id, environment))
            if database is None:
                path = self.environment_path(workspace_id, environment)
                if not path.exists() and not create:
                    raise StorageError(f"workspace {workspace_id} has no {environment} database")
                database = self._open(
                    path,
                    environment_key_name(workspace_id, environment),
                    f"ws{workspace_id}-{environment}",
                    "environment",
                    {"workspace_id": str(workspace_id), "environment": environment},
                )
                self._environments[(workspace_id, environment)] = database
            return database

    def open_environments(self) -> list[Database]:
        """The environment databases this process has open right now."""
        with self._env_lock:
            return list(self._environments.values())

    def environment_ids(self) -> list[tuple[int, str]]:
        """Every workspace environment that has a database file (for background workers)."""
        return [
            (w["id"], environment)
            for w in service.list_workspaces(self.control)
            for environment in ENVIRONMENTS
            if self.environment_path(w["id"], environment).exists()
        ]

    def create_workspace(self, name: str) -> int:
        workspace_id = service.create_workspace_row(self.control, name)
        for environment in ENVIRONMENTS:
            self.keyring.create(environment_key_name(workspace_id, environment))
            self.environment_path(workspace_id, environment).parent.mkdir(parents=True, exist_ok=True)
            database = self.environment(workspace_id, environment, create=True)
            if environment == "test":
                database.write(seed_demo_course)
        return workspace_id

    def admin_event(self, action: str, target: str | None = None, workspace_id: int | None = None) -> None:
        """Operator actions through the CLI are audited like API calls."""
        import secrets

        self.audit.record_sync(
            AuditEvent(
                actor="admin:cli",
                method="CLI",
                route=action,
                status=0,
                target=target,
                workspace_id=workspace_id,
                request_id=secrets.token_hex(8),
            )
        )

    # -- what the storage and backup layers are handed -------------------------------------------
    @property
    def keystore(self) -> KeyStore:
        """The key store (subject keys, object index, erasure ledger), opened on first use."""
        with self._env_lock:
            if self._keystore is None:
                self._keystore = KeyStore(
                    self.data_dir, self.keyring, synchronous=self._sync, disk=self.disk
                )
            return self._keystore

    def backup_targets(self) -> list[Target]:
        """The databases point-in-time recovery covers: control and every environment that exists."""
        out = [Target("control", CONTROL_KEY, "control.db")]
        for workspace_id, environment in self.environment_ids():
            path = self.environment_path(workspace_id, environment)
            out.append(
                Target(
                    f"ws{workspace_id}-{environment}",
                    environment_key_name(workspace_id, environment),
                    str(path.relative_to(self.data_dir)),
                    workspace_id,
                    environment,
                )
            )
        return out

    def database_of(self, target: Target) -> Database:
        if target.workspace_id is None or target.environment is None:
            return self.control
        return self.environment(target.workspace_id, target.environment)

    def database_named(self, name: str) -> tuple[Database, str]:
        """A database and its key name, by backup name (control, ws<id>-<env>), or keystore/audit."""
        if name == "audit":
            return self.audit.database, AUDIT_KEY
        if name == "keystore":
            return self.keystore.database, KEYSTORE_KEY
        for target in self.backup_targets():
            if target.name == name:
                return self.database_of(target), target.key_name
        names = ", ".join(["audit", "keystore", *(t.name for t in self.backup_targets())])
        raise RestoreError(f"no database named {name!r} (names: {names})")

    def rekey(self, name: str) -> float:
        """Re-encrypt one database (by name, as `database_named`) under a new key, online."""
        database, key_name = self.database_named(name)
        return rotation.rekey(self.keyring, database, key_name)

    @functools.cached_property
    def backups(self) -> Backups:
        configured = self.settings.backup.path
        return Backups(
            data_dir=self.data_dir,
            keyring=self.keyring,
            disk=self.disk,
            path=Path(configured).expanduser() if configured else self.data_dir / "backups",
            retention_days=self.settings.backup.retention_days,
            snapshot_interval_hours=self.settings.backup.snapshot_interval_hours,
            ship_interval_seconds=self.settings.backup.ship_interval_seconds,
            list_targets=self.backup_targets,
            open_database=self.database_of,
            open_keystore=lambda: self.keystore,
            copied_along=(("audit.db", AUDIT_KEY),),
        )

    def close(self) -> None:
        while self.closers:
            self.closers.pop()()
        if self._keystore is not None:
            self._keystore.close()
            self._keystore = None
        with self._env_lock:
            for database in self._environments.values():
                database.close()
            self._environments.clear()
        self.audit.close()
        self.audit.database.close()
        self.control.close()


def open_runtime(settings: config.Settings, passphrase: str | None = None) -> Runtime:
    return Runtime(settings, crypto.load_master_key(settings.data_dir, passphrase))


@contextlib.contextmanager
def backups_of(opener: Callable[[], Runtime]) -> Iterator[Backups]:
    """Open a runtime for the backup layer and close it after (an in-place restore opens twice)."""
    runtime = opener()
    try:
        yield runtime.backups
    finally:
        runtime.close()


def initialise(data_dir: Path, passphrase: str | None = None) -> tuple[Runtime, bool]:
    """Create (or reopen) a data directory; returns the runtime and whether it was new."""
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    fresh = not (data_dir / "keyring.json").exists()
    if not (data_dir / config.CONFIG_FILE).exists():
        (data_dir / config.CONFIG_FILE).write_text(config.DEFAULT_TOML)
    if (
        fresh
        and not (data_dir / crypto.MASTER_KEY_FILE).exists()
        and not (data_dir / crypto.MASTER_SALT_FILE).exists()
    ):
        master = crypto.create_master_key(data_dir, passphrase)
    else:
        master = crypto.load_master_key(data_dir, passphrase)
    keyring = Keyring(data_dir, master)
    for name in (CONTROL_KEY, AUDIT_KEY, MAC_KEY, apikeys.PEPPER_KEY):
        keyring.create(name)
    return Runtime(config.load(data_dir), master), fresh
