"""Point-in-time recovery: encrypted snapshots plus an append-only, encrypted change log (D5).

Covered: `control.db` and every workspace environment database. Not covered (never rolled back):
the audit log, the keyring, the key store (`keystore.db`: subject keys and the erasure ledger) and
the object files.

Layout under the backup root (`backup.path`, default `<data dir>/backups`)::

    .lock                                   serialises shipping, snapshots, scrubs and pruning
    <db>/snapshots/<taken µs>-<seq>-v<schema>-g<gen>.snap    SQLCipher copy under backup/snapshot/<gen>
    <db>/log/<first seq>-<created µs>.seg                     AES-256-GCM records under backup/log/<gen>

`<db>` is `control` or `ws<id>-<env>`. A segment starts with a header (magic, JSON naming the
database and the key), then records: `RCD1 | first seq | last seq | last ts | length` followed by
a 12-byte nonce and the AES-256-GCM ciphertext of the zlib'd JSON rows; the AAD is the file header
plus the record header, so records cannot be moved between files or databases. Records are only
ever appended (and fsynced before the shipped rows leave `_changes`); a torn tail from a crash is
ignored on read and duplicates from a crash between fsync and delete are skipped by sequence number.

A restore to time T copies the newest snapshot taken at or before T, replays logged transactions
whose commit marker is at or before T, clears `_changes`, moves its sequence past everything
logged (so a new timeline never reuses a number), re-applies the erasure ledger and rebuilds FTS.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import secrets
import shutil
import struct
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlcipher3 import dbapi2 as sqlcipher

from appliance.storage import capture, diskfull
from appliance.storage.capture import Change
from appliance.storage.crypto import KeyProblem
from appliance.storage.database import Database, StorageError, connect, open_error
from appliance.storage.keyring import Keyring

if TYPE_CHECKING:
    from appliance.runtime import Runtime

log = logging.getLogger("appliance.backup")

SEGMENT_MAGIC = b"APPLOG1\n"
RECORD_MAGIC = b"RCD1"
RECORD_HEADER = struct.Struct(">4sQQQI")
SEGMENT_MAX_BYTES = 8 * 1024 * 1024
SEGMENT_MAX_AGE_US = 3600 * 1_000_000
SHIP_BATCH = 20_000
SERVE_LOCK = "serve.lock"
SNAP_RE = re.compile(r"^(\d{20})-(\d+)-v(\d+)-g(\d+)\.snap$")
SEG_RE = re.compile(r"^(\d{20})-(\d+)\.seg$")


class RestoreError(StorageError):
    """A restore or verification cannot be carried out."""


def now_us() -> int:
    return time.time_ns() // 1000


def iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_time(text: str) -> int:
    """ISO-8601 (a naive time is UTC) to microseconds since the epoch."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1_000_000)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- what is covered ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    name: str  # backup directory name: control | ws<id>-<env>
    key_name: str  # the database key in the keyring
    rel_path: str  # relative to the data directory
    workspace_id: int | None = None
    environment: str | None = None


def targets(runtime: Runtime) -> list[Target]:
    from appliance.runtime import CONTROL_KEY
    from appliance.workspaces import service

    out = [Target("control", CONTROL_KEY, "control.db")]
    for w in service.list_workspaces(runtime.control):
        for env in service.ENVIRONMENTS:
            path = runtime.environment_path(w["id"], env)
            if path.exists():
                out.append(
                    Target(
                        f"ws{w['id']}-{env}",
                        service.environment_key_name(w["id"], env),
                        str(path.relative_to(runtime.data_dir)),
                        w["id"],
                        env,
                    )
                )
    return out


def find_target(runtime: Runtime, name: str) -> Target:
    for t in targets(runtime):
        if t.name == name:
            return t
    raise RestoreError(f"no database named {name!r} (names: {', '.join(t.name for t in targets(runtime))})")


def database_of(runtime: Runtime, target: Target) -> Database:
    if target.workspace_id is None or target.environment is None:
        return runtime.control
    return runtime.environment(target.workspace_id, target.environment)


def backup_root(runtime: Runtime) -> Path:
    configured = runtime.settings.backup.path
    root = Path(configured).expanduser() if configured else runtime.data_dir / "backups"
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    return root


# -- the backup lock (threads and processes) ------------------------------------------------------
class BackupLock:
    """Re-entrant within a thread, exclusive across threads and processes (flock on `.lock`)."""

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


# -- backup keys ----------------------------------------------------------------------------------
def log_key_name(gen: int) -> str:
    return f"backup/log/{gen}"


def snapshot_key_name(gen: int) -> str:
    return f"backup/snapshot/{gen}"


def current_generation(keyring: Keyring) -> int:
    """The newest backup-key generation (creating the first); new snapshots and segments use it."""
    gens = [int(n.rsplit("/", 1)[1]) for n in keyring.names() if n.startswith("backup/log/")]
    gen = max(gens, default=0)
    while keyring.has(log_key_name(gen + 1)):  # `has` re-reads the file: a rotation by the CLI
        gen += 1
    if gen == 0:
        gen = 1
        keyring.create(snapshot_key_name(gen))
        keyring.create(log_key_name(gen))
    return gen


def rotate_backup_keys(keyring: Keyring) -> int:
    """Start a new generation of backup keys; older backups keep theirs until they expire."""
    gen = current_generation(keyring) + 1
    keyring.create(snapshot_key_name(gen))
    keyring.create(log_key_name(gen))
    return gen


# -- SQLCipher files outside the writer (snapshots, restore targets) ------------------------------
def open_file(path: Path, key: bytes, *, readonly: bool = False) -> Any:
    """A keyed connection in rollback-journal mode (snapshots are plain files, not WAL)."""
    target = f"file:{path}?mode=ro" if readonly else str(path)
    conn = sqlcipher.connect(target, uri=readonly, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA cipher_log_level = NONE")
    conn.execute(f"PRAGMA key = \"x'{key.hex()}'\"")
    conn.execute("PRAGMA cipher_compatibility = 4")
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlcipher.DatabaseError as exc:
        conn.close()
        raise open_error(path, exc) from None
    if not readonly:
        conn.execute("PRAGMA journal_mode = DELETE")
        conn.execute("PRAGMA secure_delete = ON")
    return conn


# -- snapshots ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SnapshotInfo:
    path: Path
    taken_us: int
    seq: int
    schema_version: int
    gen: int

    @property
    def key_name(self) -> str:
        return snapshot_key_name(self.gen)


def list_snapshots(db_dir: Path) -> list[SnapshotInfo]:
    out = []
    snap_dir = db_dir / "snapshots"
    if snap_dir.is_dir():
        for p in snap_dir.iterdir():
            m = SNAP_RE.match(p.name)
            if m:
                out.append(SnapshotInfo(p, int(m[1]), int(m[2]), int(m[3]), int(m[4])))
    return sorted(out, key=lambda s: s.taken_us)


def take_snapshot(runtime: Runtime, target: Target, reason: str = "manual") -> SnapshotInfo:
    root = backup_root(runtime)
    with BackupLock.of(root):
        gen = current_generation(runtime.keyring)
        key = runtime.keyring.get(snapshot_key_name(gen))
        snap_dir = root / target.name / "snapshots"
        snap_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        src = connect(runtime.data_dir / target.rel_path, runtime.keyring.get(target.key_name))
        tmp = snap_dir / f".tmp-{secrets.token_hex(6)}"
        try:
            src.execute("BEGIN")  # one read transaction: a consistent image, and seq/taken agree with it
            seq = capture.current_seq(src)
            version = int(src.execute("PRAGMA user_version").fetchone()[0])
            taken = capture.commit_time_us()
            dst = open_file(tmp, key)
            try:
                src.backup(dst)
            finally:
                dst.close()
            src.execute("COMMIT")
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            src.close()
        final = snap_dir / f"{taken:020d}-{seq}-v{version}-g{gen}.snap"
        try:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, final)
        except BaseException:  # e.g. ENOSPC from a delayed allocation at fsync
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(snap_dir)
        log.info(
            "snapshot taken",
            extra={
                "fields": {
                    "database": target.name,
                    "reason": reason,
                    "seconds": round(time.monotonic() - started, 3),
                    "bytes": final.stat().st_size,
                }
            },
        )
        return SnapshotInfo(final, taken, seq, version, gen)


# -- log segments ---------------------------------------------------------------------------------
@dataclass
class Segment:
    path: Path
    first_seq: int
    created_us: int


def list_segments(db_dir: Path) -> list[Segment]:
    out = []
    log_dir = db_dir / "log"
    if log_dir.is_dir():
        for p in log_dir.iterdir():
            m = SEG_RE.match(p.name)
            if m:
                out.append(Segment(p, int(m[1]), int(m[2])))
    return sorted(out, key=lambda s: (s.first_seq, s.created_us))


def _segment_header(db_name: str, key_name: str, created: int) -> bytes:
    body = json.dumps({"db": db_name, "key": key_name, "created": created}, sort_keys=True).encode()
    return SEGMENT_MAGIC + struct.pack(">I", len(body)) + body


def _encrypt_record(key: bytes, file_header: bytes, rows: list[Change]) -> bytes:
    payload = zlib.compress(json.dumps(rows, separators=(",", ":")).encode(), 6)
    nonce = secrets.token_bytes(12)
    ct_len = len(payload) + 16
    header = RECORD_HEADER.pack(RECORD_MAGIC, rows[0][0], rows[-1][0], max(r[1] for r in rows), ct_len)
    return header + nonce + AESGCM(key).encrypt(nonce, payload, file_header + header)


@dataclass
class SegmentContent:
    header: dict[str, Any]
    file_header: bytes
    records: list[list[Change]] = field(default_factory=list)
    torn_tail: bool = False


def read_segment(path: Path, keyring: Keyring) -> SegmentContent:
    data = path.read_bytes()
    if not data.startswith(SEGMENT_MAGIC) or len(data) < 12:
        raise RestoreError(f"{path}: not a log segment")
    (hlen,) = struct.unpack(">I", data[8:12])
    file_header = data[: 12 + hlen]
    header = json.loads(data[12 : 12 + hlen])
    aead = AESGCM(keyring.get(header["key"]))
    content = SegmentContent(header, file_header)
    off = len(file_header)
    while off < len(data):
        if off + RECORD_HEADER.size + 12 > len(data):
            content.torn_tail = True
            break
        rec_header = data[off : off + RECORD_HEADER.size]
        magic, _first, _last, _ts, ct_len = RECORD_HEADER.unpack(rec_header)
        start = off + RECORD_HEADER.size
        end = start + 12 + ct_len
        if magic != RECORD_MAGIC or end > len(data):
            content.torn_tail = True
            break
        try:
            plain = aead.decrypt(data[start : start + 12], data[start + 12 : end], file_header + rec_header)
        except InvalidTag:
            if end == len(data):  # a half-written last record
                content.torn_tail = True
                break
            raise RestoreError(f"{path}: record at byte {off} fails authentication") from None
        content.records.append([_change(r) for r in json.loads(zlib.decompress(plain))])
        off = end
    return content


def write_segment(path: Path, file_header: bytes, key: bytes, records: list[list[Change]]) -> None:
    """Write a whole segment (used when scrubbing), atomically."""
    tmp = path.with_name(f".tmp-{secrets.token_hex(6)}")
    with open(tmp, "wb") as f:
        f.write(file_header)
        for rows in records:
            if rows:
                f.write(_encrypt_record(key, file_header, rows))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def append_to_log(runtime: Runtime, db_dir: Path, db_name: str, rows: list[Change]) -> Path:
    gen = current_generation(runtime.keyring)
    key_name = log_key_name(gen)
    key = runtime.keyring.get(key_name)
    log_dir = db_dir / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    segments = list_segments(db_dir)
    current = segments[-1] if segments else None
    file_header = b""
    if current is not None:
        with open(current.path, "rb") as f:
            head = f.read(12)
            if head[:8] == SEGMENT_MAGIC:
                body = f.read(struct.unpack(">I", head[8:12])[0])
                if (
                    json.loads(body).get("key") == key_name
                    and current.path.stat().st_size < SEGMENT_MAX_BYTES
                    and now_us() - current.created_us < SEGMENT_MAX_AGE_US
                    and current.first_seq <= rows[0][0]
                ):
                    file_header = head + body
    if file_header and current is not None:
        path = current.path
        with open(path, "ab") as f:
            size = f.tell()
            try:
                f.write(_encrypt_record(key, file_header, rows))
                f.flush()
                os.fsync(f.fileno())
            except BaseException:
                # a partial record (disk full) would hide every record appended after it: cut it off
                with contextlib.suppress(OSError):
                    os.ftruncate(f.fileno(), size)
                    os.fsync(f.fileno())
                raise
        return path
    created = now_us()
    file_header = _segment_header(db_name, key_name, created)
    path = log_dir / f"{rows[0][0]:020d}-{created}.seg"
    try:
        with open(path, "wb") as f:
            f.write(file_header + _encrypt_record(key, file_header, rows))
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(log_dir)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def iter_changes(db_dir: Path, keyring: Keyring, after_seq: int = 0) -> Iterator[Change]:
    """Every logged change with seq > after_seq, in order, each once."""
    segments = list_segments(db_dir)
    last = after_seq
    for i, seg in enumerate(segments):
        if i + 1 < len(segments) and segments[i + 1].first_seq <= after_seq + 1:
            continue  # wholly before the start point
        for rows in read_segment(seg.path, keyring).records:
            for row in rows:
                if row[0] > last:
                    last = row[0]
                    yield row


def _change(r: Any) -> Change:
    return (int(r[0]), int(r[1]), str(r[2]), str(r[3]), r[4], r[5], r[6])


def _delete_shipped(database: Database, last: int) -> None:
    def job(db: Any) -> None:
        db.execute("DELETE FROM _changes WHERE seq <= ?", [last])

    database.write(job)


def ship(runtime: Runtime, target: Target, database: Database | None = None) -> int:
    """Move committed `_changes` rows to the encrypted log; returns how many were shipped."""
    database = database or database_of(runtime, target)
    root = backup_root(runtime)
    total = 0
    with BackupLock.of(root):
        while True:
            rows: list[Change] = [
                _change(r)
                for r in database.read()
                .execute(
                    "SELECT seq, ts, tbl, op, pk, old_pk, row FROM _changes ORDER BY seq LIMIT ?",
                    [SHIP_BATCH],
                )
                .fetchall()
            ]
            if not rows:
                return total
            append_to_log(runtime, root / target.name, target.name, rows)
            last = rows[-1][0]
            _delete_shipped(database, last)
            total += len(rows)
            if len(rows) < SHIP_BATCH:
                return total


# -- restore --------------------------------------------------------------------------------------
@dataclass
class RestoreResult:
    database: str
    snapshot: str
    changes_applied: int
    transactions: int
    erased_rows: int
    seconds: float


LedgerRows = dict[str, list[str]]  # table -> [key JSON, ...]


def apply_ledger(conn: Any, entries: list[LedgerRows]) -> int:
    """Delete every row the erasure ledger names (idempotent), and keep its ids from being reused."""
    keys = capture.key_columns(conn)
    n = 0
    for rows in entries:
        for table, pks in rows.items():
            key = keys.get(table)
            if key is None:
                continue
            where = " AND ".join(f"{capture.q(c)} IS ?" for c in key)
            for pk in pks:
                values = [capture.decode(v) for v in json.loads(pk)]
                n += conn.execute(f"DELETE FROM {capture.q(table)} WHERE {where}", values).rowcount
                if len(values) == 1 and isinstance(values[0], int):
                    conn.execute(
                        "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?", [values[0], table]
                    )
    return n


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
    src = open_file(snap.path, keyring.get(snap.key_name), readonly=True)
    try:
        dst = open_file(tmp, db_key)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()
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
        erased = apply_ledger(conn, ledger or [])
        conn.execute("COMMIT")
        capture.rebuild_fts(conn)
        problem = conn.execute("PRAGMA quick_check").fetchone()[0]
        if problem != "ok":
            raise RestoreError(f"{db_dir.name}: the restored database fails quick_check: {problem}")
    finally:
        conn.close()
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm"):
        Path(f"{out_path}{suffix}").unlink(missing_ok=True)
    os.replace(tmp, out_path)
    _fsync_dir(out_path.parent)
    return RestoreResult(
        db_dir.name, snap.path.name, applied, txns, erased, round(time.monotonic() - started, 3)
    )


def server_running(data_dir: Path) -> bool:
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


def _copy_sqlite(src_path: Path, key: bytes, dst_path: Path) -> None:
    src = connect(src_path, key)
    try:
        dst = connect(dst_path, key)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


def _prepare_target_dir(runtime: Runtime, target_dir: Path) -> None:
    """A new data directory with the current keys, audit log, key store and objects (never rolled back)."""
    from appliance.runtime import AUDIT_KEY
    from appliance.storage import crypto

    if target_dir.exists() and any(target_dir.iterdir()):
        raise RestoreError(f"{target_dir} exists and is not empty")
    target_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    src = runtime.data_dir
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
    _copy_sqlite(src / "audit.db", runtime.keyring.get(AUDIT_KEY), target_dir / "audit.db")
    from appliance.storage import objects

    if (src / objects.KEYSTORE_FILE).exists():
        store = objects.keystore(runtime)
        store.database.write(lambda db: db.execute("PRAGMA wal_checkpoint(TRUNCATE)"), transactional=False)
        _copy_sqlite(
            src / objects.KEYSTORE_FILE,
            runtime.keyring.get(objects.KEYSTORE_KEY),
            target_dir / objects.KEYSTORE_FILE,
        )


def restore(
    runtime: Runtime,
    until_us: int,
    target_dir: Path,
    only: str | None = None,
) -> list[RestoreResult]:
    """Restore every covered database (or `only` one) as of `until_us` into a new data directory.

    The current keys, audit log, key store and objects are copied along (they are never rolled
    back), so the new directory opens with the same master key; the erasure ledger is re-applied."""
    from appliance.storage import erasure

    chosen = [find_target(runtime, only)] if only else targets(runtime)
    root = backup_root(runtime)
    results = []
    with BackupLock.of(root):
        for t in chosen:
            ship(runtime, t)
        _prepare_target_dir(runtime, target_dir)
        for t in chosen:
            out = target_dir / t.rel_path
            out.parent.mkdir(parents=True, exist_ok=True)
            results.append(
                restore_file(
                    runtime.keyring,
                    root / t.name,
                    until_us,
                    out,
                    runtime.keyring.get(t.key_name),
                    erasure.ledger_rows(runtime, t.name),
                )
            )
        if only is None:
            return results
        # a single environment restored to a new directory: bring the other databases as they are now
        for t in targets(runtime):
            if t.name != only:
                out = target_dir / t.rel_path
                out.parent.mkdir(parents=True, exist_ok=True)
                _copy_sqlite(runtime.data_dir / t.rel_path, runtime.keyring.get(t.key_name), out)
    return results


def restore_in_place(
    open_runtime: Callable[[], Runtime], until_us: int, only: str | None = None
) -> list[RestoreResult]:
    """Replace the live databases (server stopped) with their state at `until_us`, then snapshot."""
    from appliance.storage import erasure

    runtime = open_runtime()
    try:
        if server_running(runtime.data_dir):
            raise RestoreError("the server is running: stop it first, or restore with --target NEW_DATA_DIR")
        chosen = [find_target(runtime, only)] if only else targets(runtime)
        root = backup_root(runtime)
        plan = []
        for t in chosen:  # nothing committed may be lost from the log before the files are replaced
            ship(runtime, t)
            if not [s for s in list_snapshots(root / t.name) if s.taken_us <= until_us]:
                raise RestoreError(f"{t.name}: no snapshot at or before {iso(until_us)}; nothing was changed")
            plan.append((t, runtime.keyring.get(t.key_name), erasure.ledger_rows(runtime, t.name)))
        keyring = runtime.keyring
        data_dir = runtime.data_dir
    finally:
        runtime.close()
    results = []
    lock = BackupLock.of(root)
    with lock:
        for t, key, ledger in plan:
            results.append(restore_file(keyring, root / t.name, until_us, data_dir / t.rel_path, key, ledger))
    runtime = open_runtime()
    try:
        for t, _key, _ledger in plan:  # a new timeline starts with a snapshot
            if t.name in {x.name for x in targets(runtime)}:
                take_snapshot(runtime, t, "after restore")
    finally:
        runtime.close()
    return results


# -- retention ------------------------------------------------------------------------------------
def prune(runtime: Runtime, target: Target, now: int | None = None) -> dict[str, int]:
    """Keep every snapshot of the retention window, the newest one before it, and the log after it."""
    root = backup_root(runtime)
    cutoff = (now or now_us()) - int(runtime.settings.backup.retention_days * 86400 * 1_000_000)
    removed = {"snapshots": 0, "segments": 0}
    with BackupLock.of(root):
        db_dir = root / target.name
        snaps = list_snapshots(db_dir)
        older = [s for s in snaps if s.taken_us < cutoff]
        for s in older[:-1]:
            s.path.unlink()
            removed["snapshots"] += 1
        kept = list_snapshots(db_dir)
        if kept:
            base = min(s.seq for s in kept)
            segments = list_segments(db_dir)
            for i, seg in enumerate(segments[:-1]):
                if segments[i + 1].first_seq <= base + 1 and seg.created_us < cutoff:
                    seg.path.unlink()
                    removed["segments"] += 1
    return removed


def prune_keys(runtime: Runtime) -> list[str]:
    """Remove backup keys no remaining snapshot or segment uses (the current generation stays)."""
    root = backup_root(runtime)
    with BackupLock.of(root):
        current = current_generation(runtime.keyring)
        used = {snapshot_key_name(current), log_key_name(current)}
        for db_dir in root.iterdir():
            if not db_dir.is_dir():
                continue
            used.update(s.key_name for s in list_snapshots(db_dir))
            for seg in list_segments(db_dir):
                with open(seg.path, "rb") as f:
                    head = f.read(12)
                    used.add(json.loads(f.read(struct.unpack(">I", head[8:12])[0]))["key"])
        gone = [n for n in runtime.keyring.names() if n.startswith("backup/") and n not in used]
        for name in gone:
            runtime.keyring.remove(name)
        return gone


# -- listing and verification ---------------------------------------------------------------------
def describe(runtime: Runtime) -> list[dict[str, Any]]:
    root = backup_root(runtime)
    out = []
    for t in targets(runtime):
        db_dir = root / t.name
        snaps = list_snapshots(db_dir)
        segs = list_segments(db_dir)
        out.append(
            {
                "database": t.name,
                "snapshots": [
                    {
                        "taken": iso(s.taken_us),
                        "seq": s.seq,
                        "schema": s.schema_version,
                        "key_gen": s.gen,
                        "bytes": s.path.stat().st_size,
                    }
                    for s in snaps
                ],
                "segments": len(segs),
                "log_bytes": sum(s.path.stat().st_size for s in segs),
                "restorable_from": iso(snaps[0].taken_us) if snaps else None,
            }
        )
    return out


@dataclass
class VerifyReport:
    ok: bool
    lines: list[str]


def verify(runtime: Runtime) -> VerifyReport:
    """Decrypt every segment and snapshot, restore each database from its oldest and newest
    snapshot through the whole log, and compare with the live database when it is quiet."""
    root = backup_root(runtime)
    lines: list[str] = []
    ok = True
    for t in targets(runtime):
        db_dir = root / t.name
        database = database_of(runtime, t)
        ship(runtime, t, database)
        try:
            snaps = list_snapshots(db_dir)
            if not snaps:
                raise RestoreError("no snapshot yet")
            records = 0
            for seg in list_segments(db_dir):
                records += sum(len(r) for r in read_segment(seg.path, runtime.keyring).records)
            with tempfile.TemporaryDirectory(dir=root) as tmp:
                with BackupLock.of(root):
                    live = database.read()
                    live.execute("BEGIN")
                    try:
                        live_seq = capture.current_seq(live)
                        pending = live.execute("SELECT count(*) FROM _changes WHERE op != 'C'").fetchone()[0]
                        live_digest = capture.database_digest(live)
                    finally:
                        live.execute("COMMIT")
                    checked = []
                    for snap in {snaps[0].path: snaps[0], snaps[-1].path: snaps[-1]}.values():
                        out = Path(tmp) / f"{snap.taken_us}.db"
                        res = restore_file(
                            runtime.keyring, db_dir, None, out, runtime.keyring.get(t.key_name), []
                        )
                        conn = open_file(out, runtime.keyring.get(t.key_name), readonly=True)
                        try:
                            digest = capture.database_digest(conn)
                        finally:
                            conn.close()
                        same = digest == live_digest
                        if not same and pending == 0:
                            raise RestoreError(
                                f"restore from {snap.path.name} differs from the live database "
                                f"in {', '.join(k for k in digest if digest[k] != live_digest.get(k))}"
                            )
                        checked.append(
                            f"{snap.path.name}: {res.changes_applied} changes in {res.seconds}s"
                            f"{', matches live' if same else ''}"
                        )
            lines.append(
                f"ok   {t.name}: {len(snaps)} snapshots, {records} logged changes (live seq {live_seq}); "
                + "; ".join(checked)
            )
        except (RestoreError, StorageError, KeyProblem, OSError, ValueError) as exc:
            ok = False
            lines.append(f"FAIL {t.name}: {exc}")
    return VerifyReport(ok, lines)


def remove_stale_temp_files(root: Path) -> int:
    """Half-written snapshots and segment rewrites left by a crash (they hold data: remove them)."""
    n = 0
    with BackupLock.of(root):
        for path in list(root.glob("*/snapshots/.tmp-*")) + list(root.glob("*/log/.tmp-*")):
            path.unlink(missing_ok=True)
            n += 1
    return n


# -- the background service -----------------------------------------------------------------------
class BackupService:
    """Ships changes every `ship_interval_seconds`, snapshots when due, prunes hourly.

    Started by the server (which also takes `serve.lock`, so an in-place restore can tell that a
    server is running); `stop()` ships what is left on a graceful shutdown."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings.backup
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock_fd: int | None = None
        self._last_prune = 0.0
        self._backup_disk_full = False  # a full backup disk (not the data disk) is logged once
        self.stats: dict[str, float] = {"shipped": 0, "ship_seconds": 0.0, "ticks": 0, "errors": 0}
        self.on_tick: list[Callable[[], None]] = []

    def start(self) -> None:
        fd = os.open(self.runtime.data_dir / SERVE_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StorageError("another server is running on this data directory") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd
        remove_stale_temp_files(backup_root(self.runtime))
        for t in targets(self.runtime):  # migrations and first runs get their snapshot before serving
            database_of(self.runtime, t)
            if self._snapshot_due(t, at_start=True):
                take_snapshot(self.runtime, t, "start")
        self._thread = threading.Thread(target=self._loop, name="backup-shipper", daemon=True)
        self._thread.start()

    def _snapshot_due(self, target: Target, at_start: bool = False) -> bool:
        snaps = list_snapshots(backup_root(self.runtime) / target.name)
        if not snaps:
            return True
        newest = snaps[-1]
        version = int(database_of(self.runtime, target).read().execute("PRAGMA user_version").fetchone()[0])
        if newest.schema_version != version:
            return True
        return not at_start and now_us() - newest.taken_us > self.settings.snapshot_interval_hours * 3600e6

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.ship_interval_seconds):
            self.tick()

    def tick(self) -> None:
        self.stats["ticks"] += 1
        if not self.runtime.disk.writable():
            return  # the data disk is full: shipping and snapshots wait (they would use the reserve)
        try:
            all_targets = targets(self.runtime)
        except Exception as exc:
            self._error("list", exc)
            return
        failed = False
        for t in all_targets:
            try:
                started = time.perf_counter()
                self.stats["shipped"] += ship(self.runtime, t)
                self.stats["ship_seconds"] += time.perf_counter() - started
                if self._snapshot_due(t):
                    take_snapshot(self.runtime, t, "scheduled")
            except Exception as exc:  # disk full, backup path gone...: retried next tick
                failed = True
                self._error(t.name, exc)
        if self._backup_disk_full and not failed:
            self._backup_disk_full = False
            log.warning("backup disk has space again: shipping and snapshots resume")
        if time.monotonic() - self._last_prune > 3600:
            self._last_prune = time.monotonic()
            try:
                for t in all_targets:
                    prune(self.runtime, t)
                prune_keys(self.runtime)
            except Exception as exc:
                self._error("prune", exc)
        for hook in list(self.on_tick):
            try:
                hook()
            except Exception as exc:
                self._error("request", exc)

    def _error(self, where: str, exc: Exception) -> None:
        self.stats["errors"] += 1
        if diskfull.is_disk_full(exc):  # once per episode, not once a second
            root = backup_root(self.runtime)
            if self.runtime.disk.same_disk(root):
                self.runtime.disk.report(exc, f"backup {where}")
            elif not self._backup_disk_full:
                self._backup_disk_full = True
                log.error(
                    "backup disk full: shipping and snapshots wait for space (changes stay in the databases)",
                    extra={"fields": {"event": "backup_disk_full", "where": where, "error": diskfull.describe(exc)}},
                )
            return
        log.error(
            "backup step failed", extra={"fields": {"where": where, "error": f"{type(exc).__name__}: {exc}"}}
        )

    def stop(self) -> None:
        """Stop the thread and ship what is left (graceful shutdown)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        with contextlib.suppress(Exception):
            for t in targets(self.runtime):
                ship(self.runtime, t)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def start_backup_service(runtime: Runtime) -> BackupService:
    """What the server starts: the shipper thread, with rekey requests from the CLI handled in it."""
    from appliance.storage import rotation

    service = BackupService(runtime)
    service.on_tick.append(lambda: rotation.handle_requests(runtime))
    service.start()
    return service
