"""Disk full: recognise it, refuse writes cleanly while it lasts, resume when space returns.

Recognised: SQLite's SQLITE_FULL ("database or disk is full", which SQLite reports for ENOSPC) and
`OSError` ENOSPC / EDQUOT from our own file writes (object store, log segments, snapshots).

A *disk-full episode* starts at the first such error on the data directory's disk
(`DiskMonitor.report`): one JSON log line says so, the space reserve file (`.disk-reserve`,
`storage.disk_reserve_mb`) is deleted so the audit log can keep recording, and from then on every
data write is refused before it starts (`Database.submit`, the middleware: 507 with `MESSAGE`).
Reads go on. The episode ends by itself, with one more log line, once the disk has
`resume_bytes` free again and the reserve has been re-made (checked at most once a second, on the
next write or health check). No restart is needed; nothing is retried on the caller's behalf.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from pathlib import Path

from sqlcipher3 import dbapi2 as sqlcipher

log = logging.getLogger("appliance.disk")

SQLITE_FULL_MESSAGE = "database or disk is full"
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
MESSAGE = "The appliance's disk is full; nothing was saved. Free space and retry."
# the audit entry of a request whose change did commit could not be written (fail-closed: not a 2xx)
UNCONFIRMED = (
    "The appliance's disk is full and this request's audit entry could not be written, so it is "
    "reported as failed; its change may have been saved. Free space, then check before retrying."
)
STATUS = 507
RETRY_AFTER = "30"
RESERVE_FILE = ".disk-reserve"
MIN_HEADROOM = 4 * 1024 * 1024


class DiskFull(sqlcipher.OperationalError):  # type: ignore[misc]  # sqlcipher3 has no stubs
    """A write failed, or was refused, because the data directory's disk is full.

    A subclass of sqlcipher3's OperationalError (and so of DatabaseError) with SQLite's own
    message, so code that handles database errors handles this one too."""

    def __init__(self, message: str = SQLITE_FULL_MESSAGE) -> None:
        super().__init__(message)


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether an exception (or one it was raised from / while handling) means the disk is full."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DiskFull) or getattr(exc, "disk_full", False) is True:
            return True
        if isinstance(exc, OSError) and exc.errno in FULL_ERRNOS:
            return True
        if isinstance(exc, sqlcipher.Error) and SQLITE_FULL_MESSAGE in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def as_disk_full(exc: BaseException) -> BaseException:
    """The exception to hand to a caller: a disk-full error becomes `DiskFull`, others stay."""
    if isinstance(exc, DiskFull) or not is_disk_full(exc):
        return exc
    translated = DiskFull()
    translated.__cause__ = exc
    return translated


def describe(exc: BaseException | None) -> str:
    """For the operator's log: the error's type and errno name, never paths' contents or data."""
    if exc is None:
        return ""
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"{type(exc).__name__} {errno.errorcode.get(exc.errno, exc.errno)}"
    cause = exc.__cause__
    return type(exc).__name__ + (f" ({describe(cause)})" if cause is not None else "")


class DiskMonitor:
    """The disk-full state of one data directory (one per process, held by the Runtime)."""

    def __init__(self, data_dir: Path, reserve_bytes: int, check_interval: float = 1.0) -> None:
        self.data_dir = data_dir
        self.reserve_path = data_dir / RESERVE_FILE
        self.reserve_bytes = max(0, int(reserve_bytes))
        # free space needed to end an episode: the reserve again plus room to work
        self.resume_bytes = self.reserve_bytes + max(self.reserve_bytes, MIN_HEADROOM)
        self.check_interval = check_interval
        self.episodes = 0
        self._lock = threading.Lock()
        self._full_since: float | None = None
        self._checked = 0.0

    @property
    def full(self) -> bool:
        return self._full_since is not None

    def free_bytes(self) -> int:
        st = os.statvfs(self.data_dir)
        return int(st.f_bavail * st.f_frsize)

    def same_disk(self, path: Path) -> bool:
        try:
            return os.stat(path).st_dev == os.stat(self.data_dir).st_dev
        except OSError:
            return False

    # -- the space reserve ------------------------------------------------------------------------
    def check_at_start(self) -> None:
        """Before any database opens: opening needs a little space (the WAL's shared-memory file),
        so on a disk that is already full the reserve is given back first and the process starts
        inside an episode (reads work, writes get 507) instead of failing to start."""
        free = self._free_or_none()
        if free is not None and free < MIN_HEADROOM and self.reserve_path.exists():
            self.report(None, "start")

    def prepare(self) -> None:
        """At server start: make the reserve file (a warning, not a failure, if there is no room).
        Not during an episode: the space it would take is what the episode is waiting for."""
        if self.full:
            return
        if self.reserve_bytes and not self._make_reserve():
            log.warning(
                "disk space reserve not created",
                extra={"fields": {"reserve_bytes": self.reserve_bytes, "free_bytes": self._free_or_none()}},
            )

    def _make_reserve(self) -> bool:
        if not self.reserve_bytes:
            return True
        try:
            if self.reserve_path.stat().st_size >= self.reserve_bytes:
                return True
        except OSError:
            pass
        try:
            fd = os.open(self.reserve_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                try:
                    os.posix_fallocate(fd, 0, self.reserve_bytes)
                except OSError as exc:
                    if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                        raise
                    chunk = os.urandom(1024 * 1024)  # incompressible: a compressing filesystem must store it
                    left = self.reserve_bytes
                    while left > 0:
                        left -= os.write(fd, chunk[: min(left, len(chunk))])
                os.fsync(fd)
            finally:
                os.close(fd)
            return True
        except OSError:
            self.reserve_path.unlink(missing_ok=True)
            return False

    def _release_reserve(self) -> bool:
        try:
            self.reserve_path.unlink()
            return True
        except OSError:
            return False

    def _free_or_none(self) -> int | None:
        try:
            return self.free_bytes()
        except OSError:
            return None

    # -- the episode ------------------------------------------------------------------------------
    def report(self, exc: BaseException | None, where: str) -> None:
        """A write on the data directory's disk failed for lack of space: start an episode (once)."""
        with self._lock:
            if self._full_since is not None:
                return
            self._full_since = time.monotonic()
            self._checked = self._full_since
            self.episodes += 1
            released = self._release_reserve()
        log.error(
            "disk full: writes are refused until space is freed",
            extra={
                "fields": {
                    "event": "disk_full",
                    "where": where,
                    "error": describe(exc),
                    "data_dir": str(self.data_dir),
                    "free_bytes": self._free_or_none(),
                    "reserve_released": released,
                    "resume_when_free_bytes": self.resume_bytes,
                }
            },
        )

    def writable(self) -> bool:
        """True unless an episode lasts; re-checks the free space (at most once a second) to end it."""
        if self._full_since is None:
            return True
        with self._lock:
            since = self._full_since
            if since is None:
                return True
            now = time.monotonic()
            if now - self._checked < self.check_interval:
                return False
            self._checked = now
            free = self._free_or_none()
            if free is None or free < self.resume_bytes or not self._make_reserve():
                return False
            self._full_since = None
        log.warning(
            "disk space available again: writes resume",
            extra={
                "fields": {
                    "event": "disk_space_returned",
                    "full_seconds": round(now - since, 1),
                    "free_bytes": self._free_or_none(),
                }
            },
        )
        return True
