"""Log segments: sealed (encrypted and authenticated), and a torn tail from a crash is ignored."""

from __future__ import annotations

import pytest

from appliance.backup.format import list_segments, list_snapshots, read_segment
from appliance.backup.shipping import ship
from appliance.backup.snapshots import take_snapshot
from appliance.backup.targets import RestoreError
from appliance.runtime import Runtime
from tests.backup.rows import theme


def test_log_segments_are_sealed_and_tolerate_a_torn_tail(runtime: Runtime) -> None:
    rt = runtime
    db = rt.environment(1, "test")
    take_snapshot(rt.backups, rt.backups.find("ws1-test"))
    db.write(lambda w: theme(w, "sealed-marker-491"))
    target = rt.backups.find("ws1-test")
    assert ship(rt.backups, target) >= 2  # the row and its commit marker
    db_dir = rt.backups.root / "ws1-test"
    seg = list_segments(db_dir)[-1].path
    raw = seg.read_bytes()
    assert b"sealed-marker-491" not in raw and b"themes" not in raw
    rows = [r for rec in read_segment(seg, rt.keyring).records for r in rec]
    assert any("sealed-marker-491" in (r[6] or "") for r in rows)
    # a crash half-way through appending a record: the tail is ignored
    seg.write_bytes(raw + raw[-40:])
    assert read_segment(seg, rt.keyring).torn_tail
    assert [r for rec in read_segment(seg, rt.keyring).records for r in rec] == rows
    # a flipped bit inside an earlier record is tampering, not a torn tail
    db.write(lambda w: theme(w, "second"))
    ship(rt.backups, target)
    data = bytearray(seg.read_bytes())
    data[len(data) // 3] ^= 1
    seg.write_bytes(bytes(data))
    with pytest.raises(RestoreError):
        read_segment(seg, rt.keyring)
    # without the backup keys a segment is noise: the data-dir keys do not open it
    assert list_snapshots(db_dir)[0].path.read_bytes()[:16] != b"SQLite format 3\x00"


def test_a_record_cut_short_is_a_torn_tail_and_the_records_before_it_stay(runtime: Runtime) -> None:
    """A crash after a record's header and part of its ciphertext reached the disk."""
    rt = runtime
    db = rt.environment(1, "test")
    target = rt.backups.find("ws1-test")
    db.write(lambda w: theme(w, "first batch"))
    ship(rt.backups, target)
    seg = list_segments(rt.backups.root / "ws1-test")[-1].path
    first = [r for rec in read_segment(seg, rt.keyring).records for r in rec]
    db.write(lambda w: theme(w, "second batch"))
    ship(rt.backups, target)
    assert list_segments(rt.backups.root / "ws1-test")[-1].path == seg  # appended to the same segment
    seg.write_bytes(seg.read_bytes()[:-5])
    content = read_segment(seg, rt.keyring)
    assert content.torn_tail
    assert [r for rec in content.records for r in rec] == first


def test_after_a_record_a_crash_cut_short_the_next_record_starts_a_new_segment(runtime: Runtime) -> None:
    """Readers stop at a torn record, so one appended after it would never be restored: the first
    append of a process (here: after the file changed behind its back) sees the torn tail and
    starts a new segment; the torn bytes stay where they are."""
    from appliance.backup.shipping import iter_changes

    rt = runtime
    db = rt.environment(1, "test")
    target = rt.backups.find("ws1-test")
    take_snapshot(rt.backups, target)
    db.write(lambda w: theme(w, "before the crash"))
    ship(rt.backups, target)
    db_dir = rt.backups.root / "ws1-test"
    seg = list_segments(db_dir)[-1].path
    whole = seg.read_bytes()
    torn = whole + whole[len(whole) // 2:][:300]  # half of a record, as a kill -9 leaves it
    seg.write_bytes(torn)
    assert read_segment(seg, rt.keyring).torn_tail
    db.write(lambda w: theme(w, "after the restart"))
    ship(rt.backups, target)
    assert seg.read_bytes() == torn and len(list_segments(db_dir)) == 2
    rows = " ".join(change[6] or "" for change in iter_changes(db_dir, rt.keyring))
    assert "before the crash" in rows and "after the restart" in rows
