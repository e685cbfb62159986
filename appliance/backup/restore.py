"""Restore: a covered database, or a whole data directory, as it was at a chosen time.

What a restore to time T guarantees: it copies the newest snapshot taken at or before T, replays
the logged transactions whose commit marker is at or before T (a transaction is replayed whole or
not at all), clears `_changes`, moves its sequence past everything ever logged (so a new timeline
never reuses a number), re-applies the erasure ledger (nothing erased comes back) and rebuilds
FTS. The result must pass `quick_check`; it is built under a temporary name and only then
fsynced and renamed over the target, so a failed restore leaves the target as it was.

Before restoring, everything committed is shipped, so nothing committed is lost from the log. The
audit log, the keyring, the key store and the object files are never rolled back: a restore into a
new directory copies them as they are now; an in-place restore (server stopped) leaves them.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.backup import ledger as erasure_ledger
from appliance.backup.format import iso, list_segments, list_snapshots
from appliance.backup.ledger import LedgerRows
from appliance.backup.shipping import iter_changes, ship
from appliance.backup.snapshots import take_snapshot
from appliance.backup.targets import BackupLock, Backups, RestoreError, Target, server_running
from appliance.storage import capture, crypto, files
from appliance.storage.database import connect, open_file
from appliance.storage.keyring import Keyring
from appliance.storage.objects import KEYSTORE_FILE, KEYSTORE_KEY


@dataclass
class RestoreResult:
    database: str
    snapshot: str
    changes_applied: int
    transactions: int
    erased_rows: int
    seconds: float


def restore_file(
    keyring: Keyring,
    db_dir: Path,
    until_us: int | None,
    out_path: Path,
    db_key: bytes,
    ledger: list[LedgerRows] | None = None,
) -> RestoreResult:
    """Rebuild one database as it was at `until_us` (None: as late as the log goes) into out_path."""
    started = time.monotonic()
    snaps = [s for s in list_snapshots(db_dir) if until_us is None or s.taken_us <= until_us]
    if not snaps:
        raise RestoreError(
            f"{db_dir.name}: no snapshot at or before {iso(until_us) if until_us else 'now'} "
            "(the oldest restorable time is the oldest snapshot)"
        )
    snap = snaps[-1]
    tmp = out_path.with_name(out_path.name + ".restoring")
    for p in (tmp, Path(f"{tmp}-journal")):
        p.unlink(missing_ok=True)
    _copy(open_file(snap.path, keyring.get(snap.key_name), readonly=True), lambda: open_file(tmp, db_key))
    conn = open_file(tmp, db_key)
    try:
        conn.execute("PRAGMA synchronous = OFF")  # a scratch file until it is fsynced and renamed below
        capture.drop_triggers(conn)
        conn.execute("PRAGMA foreign_keys = OFF")
        keys = capture.key_columns(conn)
        applied = txns = 0
        last_seq = snap.seq
        conn.execute("BEGIN IMMEDIATE")
        for group in capture.committed(iter_changes(db_dir, keyring, snap.seq), until_us):
            applied += capture.apply_changes(conn, group, keys)
            txns += 1
        for seg in list_segments(db_dir):  # the highest number ever logged, on any timeline
            last_seq = max(last_seq, seg.first_seq)
        for change in iter_changes(db_dir, keyring, last_seq - 1):
            last_seq = max(last_seq, change[0])
        conn.execute("DELETE FROM _changes")
        conn.execute("DELETE FROM sqlite_sequence WHERE name = '_changes'")
        conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('_changes', ?)", [last_seq + 1000])
        erased = erasure_ledger.apply_ledger(conn, ledger or [])
        conn.execute("COMMIT")
        capture.rebuild_fts(conn)
        problem = conn.execute("PRAGMA quick_check").fetchone()[0]
        if problem != "ok":
            raise RestoreError(f"{db_dir.name}: the restored database fails quick_check: {problem}")
    finally:
        conn.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{out_path}{suffix}").unlink(missing_ok=True)
    files.durable_replace(tmp, out_path)
    return RestoreResult(
        db_dir.name, snap.path.name, applied, txns, erased, round(time.monotonic() - started, 3)
    )


def _copy(src: Any, open_dst: Callable[[], Any]) -> None:
    """SQLite's online backup of ``src`` into the database ``open_dst`` opens; both are closed."""
    try:
        dst = open_dst()
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


def _copy_sqlite(src_path: Path, key: bytes, dst_path: Path) -> None:
    _copy(connect(src_path, key), lambda: connect(dst_path, key))


def _prepare_target_dir(backups: Backups, target_dir: Path) -> None:
    """A new data directory with the current keys, audit log, key store and objects (never rolled back)."""
    if target_dir.exists() and any(target_dir.iterdir()):
        raise RestoreError(f"{target_dir} exists and is not empty")
    target_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    src = backups.data_dir
    for name in (crypto.MASTER_KEY_FILE, crypto.MASTER_SALT_FILE, "keyring.json", "audit.head"):
        if (src / name).exists():
            shutil.copy2(src / name, target_dir / name)
    toml = (src / "appliance.toml").read_text() if (src / "appliance.toml").exists() else ""
    # the copy must not ship into the original's backup path
    toml = re.sub(r"(?m)^(\s*path\s*=\s*)\"[^\"]*\"", r'\1""', toml) if "[backup]" in toml else toml
    (target_dir / "appliance.toml").write_text(toml)
    for name in ("tls", "objects"):
        if (src / name).is_dir():
            shutil.copytree(src / name, target_dir / name)
    for rel_path, key_name in backups.copied_along:
        _copy_sqlite(src / rel_path, backups.keyring.get(key_name), target_dir / rel_path)
    if (src / KEYSTORE_FILE).exists():
        store = backups.keystore
        store.database.write(lambda db: db.execute("PRAGMA wal_checkpoint(TRUNCATE)"), transactional=False)
        _copy_sqlite(src / KEYSTORE_FILE, backups.keyring.get(KEYSTORE_KEY), target_dir / KEYSTORE_FILE)


def restore(
    backups: Backups,
    until_us: int,
    target_dir: Path,
    only: str | None = None,
) -> list[RestoreResult]:
    """Restore every covered database (or `only` one) as of `until_us` into a new data directory.

    The current keys, audit log, key store and objects are copied along (they are never rolled
    back), so the new directory opens with the same master key; the erasure ledger is re-applied."""
    chosen = [backups.find(only)] if only else backups.targets()
    root = backups.root
    results = []
    with BackupLock.of(root):
        for t in chosen:
            ship(backups, t)
        _prepare_target_dir(backups, target_dir)
        for t in chosen:
            out = target_dir / t.rel_path
            out.parent.mkdir(parents=True, exist_ok=True)
            results.append(
                restore_file(
                    backups.keyring,
                    root / t.name,
                    until_us,
                    out,
                    backups.keyring.get(t.key_name),
                    erasure_ledger.ledger_rows(backups.keystore, t.name),
                )
            )
        if only is None:
            return results
        # a single environment restored to a new directory: bring the other databases as they are now
        for t in backups.targets():
            if t.name != only:
                out = target_dir / t.rel_path
                out.parent.mkdir(parents=True, exist_ok=True)
                _copy_sqlite(backups.data_dir / t.rel_path, backups.keyring.get(t.key_name), out)
    return results


@dataclass
class InPlacePlan:
    """What an in-place restore replaces, gathered while the data directory is open (the databases
    are closed when the files are replaced): `plan_in_place`, then `apply_in_place`."""

    data_dir: Path
    root: Path
    keyring: Keyring
    until_us: int
    steps: list[tuple[Target, bytes, list[LedgerRows]]]


def plan_in_place(backups: Backups, until_us: int, only: str | None = None) -> InPlacePlan:
    """Ship what is committed and check every chosen database has a snapshot at or before `until_us`."""
    chosen = [backups.find(only)] if only else backups.targets()
    steps = []
    for t in chosen:  # nothing committed may be lost from the log before the files are replaced
        ship(backups, t)
        if not [s for s in list_snapshots(backups.root / t.name) if s.taken_us <= until_us]:
            raise RestoreError(f"{t.name}: no snapshot at or before {iso(until_us)}; nothing was changed")
        steps.append((t, backups.keyring.get(t.key_name), erasure_ledger.ledger_rows(backups.keystore, t.name)))
    return InPlacePlan(backups.data_dir, backups.root, backups.keyring, until_us, steps)


def apply_in_place(
    plan: InPlacePlan, open_backups: Callable[[], AbstractContextManager[Backups]]
) -> list[RestoreResult]:
    """Replace the planned databases (server stopped, nothing open), then snapshot the new timeline."""
    results = []
    with BackupLock.of(plan.root):
        for t, key, ledger in plan.steps:
            results.append(
                restore_file(plan.keyring, plan.root / t.name, plan.until_us, plan.data_dir / t.rel_path, key, ledger)
            )
    with open_backups() as backups:
        names = {x.name for x in backups.targets()}
        for t, _key, _ledger in plan.steps:  # a new timeline starts with a snapshot
            if t.name in names:
                take_snapshot(backups, t, "after restore")
    return results


def restore_in_place(
    open_backups: Callable[[], AbstractContextManager[Backups]], until_us: int, only: str | None = None
) -> list[RestoreResult]:
    """Replace the live databases (server stopped) with their state at `until_us`, then snapshot.

    `open_backups` opens the data directory (and closes it when its context ends): it is opened
    once to ship and plan, closed while the files are replaced, and opened again to snapshot."""
    with open_backups() as backups:
        if server_running(backups.data_dir):
            raise RestoreError("the server is running: stop it first, or restore with --target NEW_DATA_DIR")
        plan = plan_in_place(backups, until_us, only)
    return apply_in_place(plan, open_backups)
