"""SQLCipher 4 databases with one writer thread and thread-local readers.

Every database file is AES-256 encrypted (SQLCipher 4: AES-256-CBC + HMAC-SHA512 per page) under a
raw 256-bit key from the keyring, so opening costs no KDF. Writes go through a single writer thread
that commits waiting jobs together (group commit: one fsync serves many writes); each job runs in
its own savepoint so one failing job does not undo the others. Reads use one connection per thread.

Several server processes may write one file (`appliance serve --workers N`): there, with
`share_writers()` called before the databases open, each writer step holds an exclusive `flock` on
`<file>.wlock` around its transaction, so writers from different processes queue in the kernel and
wake as soon as the lock is free, instead of polling SQLite's busy handler (which sleeps up to
100 ms between tries). SQLite's own locking keeps writes correct either way; a CLI command beside
the server relies on it (busy timeout).

Pitfalls handled here: sqlite-utils must raise sqlcipher3's exception
classes; the key must be set before any other pragma; a wrong key only shows on the first read;
never open one file with two SQLite libraries in one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils
import sqlite_utils.db
from sqlcipher3 import dbapi2 as sqlcipher

from appliance.storage.diskfull import (
    MIN_HEADROOM,
    DiskFull,
    DiskMonitor,
    as_disk_full,
    describe,
    is_disk_full,
)

# sqlite-utils catches sqlite3.* exceptions; make it catch sqlcipher3's instead. We never let
# sqlite-utils open a path itself (that would be an unkeyed file), only our own connections.
sqlite_utils.db.sqlite3 = sqlcipher  # type: ignore[attr-defined]

PLAIN_SQLITE_HEADER = b"SQLite format 3\x00"
MAX_GROUP = 256

T = TypeVar("T")
_SHARED_WRITERS = False


def share_writers() -> None:
    """This process is one of several server processes writing the same files (server.workers)."""
    global _SHARED_WRITERS
    _SHARED_WRITERS = True

log = logging.getLogger("appliance.storage")
DatabaseError = sqlcipher.DatabaseError
IntegrityError = sqlcipher.IntegrityError


def fetch_all(
    db: sqlite_utils.Database, sql: str, params: list[Any] | tuple[Any, ...] = ()
) -> list[dict[str, Any]]:
    """Rows as dicts, from a reader or inside a writer job."""
    cursor = db.execute(sql, list(params))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def fetch_one(
    db: sqlite_utils.Database, sql: str, params: list[Any] | tuple[Any, ...] = ()
) -> dict[str, Any] | None:
    rows = fetch_all(db, sql, params)
    return rows[0] if rows else None


def last_id(cursor: Any) -> int:
    """The rowid an INSERT just made (sqlite3 types it as optional)."""
    rowid = cursor.lastrowid
    if rowid is None:
        raise StorageError("the statement inserted no row")
    return int(rowid)


class StorageError(Exception):
    """A database cannot be used safely (wrong key, not encrypted, wrong identity)."""


def key_literal(key: bytes) -> str:
    """A raw 256-bit key as SQLCipher takes it in `PRAGMA key` / `PRAGMA rekey` (no KDF)."""
    if len(key) != 32:
        raise StorageError("database keys are 256-bit")
    return f"\"x'{key.hex()}'\""


def _keyed(path: Path, key: bytes, *, readonly: bool = False) -> Any:
    """The one place a SQLCipher connection is keyed: the key before any other pragma, SQLCipher 4
    settings, then a first read, because a wrong key only shows there."""
    literal = key_literal(key)
    target = f"file:{path}?mode=ro" if readonly else str(path)
    conn = sqlcipher.connect(target, uri=readonly, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA cipher_log_level = NONE")
    conn.execute(f"PRAGMA key = {literal}")
    conn.execute("PRAGMA cipher_compatibility = 4")
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlcipher.DatabaseError as exc:
        conn.close()
        raise open_error(path, exc) from None
    return conn


def connect(path: Path, key: bytes, *, synchronous: str = "NORMAL", busy_timeout_ms: int = 5000) -> Any:
    """Open and key one SQLCipher connection to a live database (WAL)."""
    conn = _keyed(path, key)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] != "wal":
        conn.close()
        raise StorageError(f"{path.name}: cannot enable WAL")
    conn.execute("PRAGMA secure_delete = ON")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def open_file(path: Path, key: bytes, *, readonly: bool = False) -> Any:
    """A keyed connection in rollback-journal mode, for database files no writer thread owns
    (snapshots, restore targets): a single file, no WAL beside it."""
    conn = _keyed(path, key, readonly=readonly)
    if not readonly:
        conn.execute("PRAGMA journal_mode = DELETE")
        conn.execute("PRAGMA secure_delete = ON")
    return conn


def open_error(path: Path, exc: Exception) -> StorageError:
    """What a database that will not open tells the operator: a wrong key only when SQLite says
    "not a database"; otherwise its own words (an I/O error on a full disk, permissions, ...)."""
    if getattr(exc, "sqlite_errorname", "") == "SQLITE_NOTADB":
        return StorageError(f"{path.name} does not open with its key (wrong key or not a SQLCipher 4 file)")
    try:
        st = os.statvfs(path.parent)
        hint = "; the disk is full: free space and start again" if st.f_bavail * st.f_frsize < MIN_HEADROOM else ""
    except OSError:
        hint = ""
    return StorageError(f"{path.name} cannot be opened: {exc}{hint}")


def check_encrypted(path: Path) -> None:
    """Refuse a database file that opens without its key: it would be plaintext on disk."""
    if not path.exists():
        return
    with open(path, "rb") as f:
        header = f.read(16)
    if header == PLAIN_SQLITE_HEADER:
        raise StorageError(f"{path} is a plaintext SQLite file; refusing to run")
    if not header:
        return
    probe = sqlcipher.connect(str(path))
    try:
        probe.execute("PRAGMA cipher_log_level = NONE")
        probe.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlcipher.DatabaseError:
        return
    finally:
        probe.close()
    raise StorageError(f"{path} opens without a key; refusing to run")


@dataclass
class _Job:
    fn: Callable[[sqlite_utils.Database], Any]
    future: Future[Any] = field(default_factory=Future)
    transactional: bool = True


class Database:
    """One encrypted database file: a writer thread plus thread-local readers."""

    def __init__(
        self, path: Path, key: bytes, *, name: str, synchronous: str = "NORMAL", busy_timeout_ms: int = 5000
    ) -> None:
        self.path = path
        self.name = name
        self._key = key
        self._synchronous = synchronous
        self._busy_timeout_ms = busy_timeout_ms
        self._writer = sqlite_utils.Database(
            connect(path, key, synchronous=synchronous, busy_timeout_ms=busy_timeout_ms)
        )
        # the cross-process writer lock (module docstring); opened once, held only around a step
        self._wlock = (
            os.open(path.with_name(path.name + ".wlock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            if _SHARED_WRITERS
            else None
        )
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._local = threading.local()
        self._readers: list[Any] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        # the data directory's disk-full state (set by the Runtime): writes are refused while it is
        # full, and a write that fails for lack of space starts an episode. The audit log opts out
        # of the refusal: it writes into the space reserve so reads stay audited.
        self.disk: DiskMonitor | None = None
        self.refuse_when_full = True
        # run on the writer thread inside every group transaction, just before COMMIT (change capture)
        self.before_commit: list[Callable[[sqlite_utils.Database], None]] = []
        self._thread = threading.Thread(target=self._run, name=f"writer:{name}", daemon=True)
        self._thread.start()

    # -- writes ---------------------------------------------------------------------------------
    def submit(self, fn: Callable[[sqlite_utils.Database], T], *, transactional: bool = True) -> Future[T]:
        """Queue a write; it runs on the writer thread inside a transaction (or alone, if not)."""
        if self._closed:
            raise StorageError(f"database {self.name} is closed")
        job = _Job(fn, transactional=transactional)
        if self.disk is not None and self.refuse_when_full and not self.disk.writable():
            job.future.set_exception(DiskFull())
            return job.future
        self._jobs.put(job)
        return job.future

    def write(self, fn: Callable[[sqlite_utils.Database], T], *, transactional: bool = True) -> T:
        return self.submit(fn, transactional=transactional).result()

    async def awrite(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        return await asyncio.wrap_future(self.submit(fn))

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                break
            if not job.transactional:
                self._guarded(partial(self._run_alone, job), [job])
                continue
            group = [job]
            stop = False
            while len(group) < MAX_GROUP:
                try:
                    nxt = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                if not nxt.transactional:
                    self._guarded(partial(self._commit_group, group), group)
                    group = []
                    self._guarded(partial(self._run_alone, nxt), [nxt])
                    break
                group.append(nxt)
            if group:
                self._guarded(partial(self._commit_group, group), group)
            if stop:
                break
        self._writer.conn.close()
        if self._wlock is not None:
            os.close(self._wlock)

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Hold the cross-process writer lock (flock waits in the kernel, without the GIL)."""
        if self._wlock is None:
            yield
            return
        fcntl.flock(self._wlock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._wlock, fcntl.LOCK_UN)

    def _guarded(self, step: Callable[[], None], jobs: list[_Job]) -> None:
        """Run one writer step; the writer thread outlives any failure and a job still waiting
        gets the error."""
        try:
            with self._exclusive():
                step()
        except BaseException as exc:  # the thread must not die, and no caller may hang
            log.error(
                "database writer step failed",
                extra={"fields": {"database": self.name, "error": describe(exc)}},
            )
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)

    def _failed(self, exc: BaseException) -> BaseException:
        """What a failed write's caller gets; a disk-full failure starts the episode."""
        if is_disk_full(exc):
            if self.disk is not None:
                self.disk.report(exc, f"database {self.name}")
            return as_disk_full(exc)
        return exc

    def _run_alone(self, job: _Job) -> None:
        if not job.future.set_running_or_notify_cancel():
            return
        try:
            job.future.set_result(job.fn(self._writer))
        except BaseException as exc:
            job.future.set_exception(self._failed(exc))

    def _commit_group(self, group: list[_Job]) -> None:
        conn = self._writer.conn
        live = [job for job in group if job.future.set_running_or_notify_cancel()]
        if not live:
            return
        outcomes: list[tuple[_Job, Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job in live:
                conn.execute("SAVEPOINT job")
                try:
                    result = job.fn(self._writer)
                except Exception as exc:
                    if not conn.in_transaction:
                        # SQLite rolled the whole transaction back (SQLITE_FULL, an I/O error):
                        # the jobs before this one are gone too, and the next ones would each
                        # autocommit on their own. The group fails as one.
                        raise
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    outcomes.append((job, None, exc))
                else:
                    conn.execute("RELEASE job")
                    outcomes.append((job, result, None))
            for hook in self.before_commit:
                hook(self._writer)
            conn.execute("COMMIT")
        except BaseException as exc:
            self._rollback()
            failure = self._failed(exc)
            for job in live:
                job.future.set_exception(failure)
            return
        for job, result, error in outcomes:
            if error is None:
                job.future.set_result(result)
            else:
                job.future.set_exception(self._failed(error))

    def _rollback(self) -> None:
        """End a failed group transaction; if even ROLLBACK fails, start on a fresh connection."""
        conn = self._writer.conn
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return
        except Exception as exc:
            log.error(
                "rollback failed; reopening the writer connection",
                extra={"fields": {"database": self.name, "error": describe(exc)}},
            )
        try:
            fresh = connect(self.path, self._key, synchronous=self._synchronous, busy_timeout_ms=self._busy_timeout_ms)
        except Exception as exc:  # keep the old one; the next group tries again
            log.error("could not reopen the writer connection", extra={"fields": {"database": self.name, "error": describe(exc)}})
            return
        try:
            conn.close()  # an open transaction that never committed is discarded with it
        except Exception:  # noqa: S110 - already failing; the fresh connection takes over
            pass
        self._writer = sqlite_utils.Database(fresh)

    def rekey(self, new_key: bytes) -> None:
        """Re-encrypt the file under a new key, online: `PRAGMA rekey` on the writer connection
        (page by page, in one transaction), WAL checkpointed; readers reopen with the new key."""
        literal = key_literal(new_key)

        def job(db: sqlite_utils.Database) -> None:
            db.execute(f"PRAGMA rekey = {literal}")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._key = new_key

        self.write(job, transactional=False)

    # -- reads ----------------------------------------------------------------------------------
    def read(self) -> sqlite_utils.Database:
        """This thread's read-only view (query_only connection, opened and keyed once)."""
        db: sqlite_utils.Database | None = getattr(self._local, "db", None)
        if db is None or getattr(self._local, "key", None) != self._key:  # reopen after an online rekey
            if self._closed:
                raise StorageError(f"database {self.name} is closed")
            conn = connect(
                self.path, self._key, synchronous=self._synchronous, busy_timeout_ms=self._busy_timeout_ms
            )
            conn.execute("PRAGMA query_only = ON")
            conn.execute("PRAGMA cache_size = -8000")
            db = sqlite_utils.Database(conn)
            self._local.db = db
            self._local.key = self._key
            with self._readers_lock:
                self._readers.append(conn)
        return db

    def close(self) -> None:
        """Drain queued writes, stop the writer and close every connection."""
        if self._closed:
            return
        self._closed = True
        self._jobs.put(None)
        self._thread.join(timeout=30)
        with self._readers_lock:
            for conn in self._readers:
                try:
                    conn.close()
                except sqlcipher.ProgrammingError:
                    pass  # a reader that belongs to another, still-running thread
            self._readers.clear()
