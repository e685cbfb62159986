"""Durable file writes (appliance.storage.files), and each storage rule written once."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from appliance.storage import files

APPLIANCE = Path(__file__).resolve().parents[2] / "appliance"


def _fsync_log(monkeypatch: pytest.MonkeyPatch, watched: Path) -> list[str]:
    """Record each fsync as 'dir' or the file's content at that moment."""
    calls: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        mode = os.fstat(fd).st_mode
        calls.append("dir" if stat.S_ISDIR(mode) else f"file:{watched.read_bytes() if watched.exists() else None!r}")
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return calls


def test_durable_write_replaces_whole_and_syncs_the_directory_after_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "keyring.json"
    target.write_bytes(b"old")
    calls = _fsync_log(monkeypatch, target)
    files.durable_write(target, b"new contents")
    assert target.read_bytes() == b"new contents"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keyring.json"]  # no temporary file left
    # the file's bytes are synced while the old name still holds the old file, and the directory
    # after the rename put the new one in place
    assert calls == ["file:b'old'", "dir"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "segment.seg"
    target.write_bytes(b"whole")
    with pytest.raises(RuntimeError), files.durable_file(target) as f:
        f.write(b"half of it")
        raise RuntimeError("disk full, say")
    assert target.read_bytes() == b"whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["segment.seg"]


def test_append_is_synced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "log.seg"
    target.write_bytes(b"head|")
    calls = _fsync_log(monkeypatch, target)
    files.durable_append(target, b"record")
    assert target.read_bytes() == b"head|record"
    assert calls == ["file:b'head|record'"]


# A file size limit makes writes past it fail (EFBIG) the way a full disk does (ENOSPC): the first
# write stops at the limit, the next one fails. In a child process, so the limit touches nothing else.
_FULL_APPEND = """
import resource, signal, sys
from pathlib import Path
from appliance.storage import files
target = Path(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (target.stat().st_size + 1000, resource.RLIM_INFINITY))
try:
    files.durable_append(target, b"R" * 5000)
except OSError as exc:
    print("refused", exc.errno)
"""


def test_an_append_that_runs_out_of_space_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    """A buffered file wrote the bytes its failed flush had kept back once more when it was closed,
    after the cut-back: a torn piece of a record in the middle of a log segment, which hid every
    record appended after it from restores (seen after a disk-full episode, tests/storage/test_disk_full.py)."""
    import subprocess
    import sys

    target = tmp_path / "log.seg"
    target.write_bytes(b"head|")
    out = subprocess.run([sys.executable, "-c", _FULL_APPEND, str(target)], capture_output=True, text=True,
                         timeout=60, cwd=APPLIANCE.parent)
    assert out.stdout.startswith("refused"), out.stdout + out.stderr
    assert target.read_bytes() == b"head|"
    files.durable_append(target, b"record")  # and the next append is the next thing in the file
    assert target.read_bytes() == b"head|record"


def _sources() -> dict[str, str]:
    return {str(p.relative_to(APPLIANCE)): p.read_text() for p in APPLIANCE.rglob("*.py")}


def test_each_rule_is_written_once() -> None:
    """SQLCipher keying lives in storage/database.py; renames into place and fsyncs in
    storage/files.py (diskfull.py fsyncs its space reserve to make the filesystem allocate it)."""
    keyed = [name for name, text in _sources().items() if re.search(r"PRAGMA (re)?key = ", text)]
    assert keyed == ["storage/database.py"]
    renames = [name for name, text in _sources().items() if "os.replace(" in text or "os.rename(" in text]
    assert renames == ["storage/files.py"]
    fsyncs = sorted(name for name, text in _sources().items() if "os.fsync(" in text)
    assert fsyncs == ["storage/diskfull.py", "storage/files.py"]
