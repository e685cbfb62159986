"""Durable file writes: the one rule for a file that must survive a crash.

A write is durable when the file's bytes are fsynced *and* the directory entry that names it is
fsynced: a rename is atomic, but it is only on disk once its directory is synced. Readers never see
a half-written file, because the bytes go to a private temporary name first and a rename puts the
whole file in place. Keys, the keyring, snapshots, log segments (created, appended, rewritten), restored databases, object files
and requests to a running server are all written through here.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def fsync_dir(directory: Path) -> None:
    """Make the directory's entries (a create, a rename, an unlink) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_name(path: Path) -> Path:
    """A private temporary name next to `path` (per process and call: the server and a CLI
    command may replace the same file at the same moment)."""
    return path.with_name(f".tmp-{path.name}.{os.getpid()}.{secrets.token_hex(4)}")


def durable_replace(tmp: Path, path: Path) -> None:
    """Put a fully written file in place: fsync it, rename it over `path`, fsync the directory.
    If that fails (ENOSPC from a delayed allocation shows at fsync) the temporary file is removed
    and `path` is as it was."""
    try:
        fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


@contextlib.contextmanager
def durable_file(path: Path, mode: int = 0o600) -> Iterator[BinaryIO]:
    """Write `path` as a stream: the body writes a temporary file, which replaces `path` durably
    when the body ends; if the body raises, the temporary file is removed and `path` is untouched."""
    tmp = temp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    durable_replace(tmp, path)


def durable_append(path: Path, data: bytes) -> None:
    """Append `data` to an existing file and fsync it. If the write or the fsync fails (disk
    full), the file is cut back to its old length: a partial tail would hide whatever is appended
    after it."""
    # Unbuffered on purpose: a buffered file keeps the bytes a failed flush did not write and
    # writes them again when it is closed, after the cut-back, where space may have returned (a
    # disk-full episode gives back its reserve). That left a torn piece of a record in the middle of
    # a log segment, and every record appended after it unreadable (tests/storage/test_files.py).
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        size = os.fstat(fd).st_size
        try:
            left = memoryview(data)
            while left:
                left = left[os.write(fd, left):]
            os.fsync(fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
                os.fsync(fd)
            raise
    finally:
        os.close(fd)


def durable_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace `path` with `data`, atomically and durably (see the module docstring)."""
    with durable_file(path, mode) as f:
        f.write(data)
