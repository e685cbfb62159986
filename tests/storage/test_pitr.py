"""Point-in-time recovery: restores reproduce the exact state at chosen times; the log is sealed."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance import config
from appliance.runtime import Runtime, initialise, open_runtime
from appliance.storage import capture, pitr
from tests.helpers import cli


@pytest.fixture()
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt, _ = initialise(tmp_path / "data")
    rt.create_workspace("pitr")
    yield rt
    rt.close()


def _theme(db: Any, name: str, blob_ish: str = "{}") -> int:
    cursor = db.execute(
        "INSERT INTO themes (name, colours, created, updated) VALUES (?, ?, 'c', 'u')", [name, blob_ish]
    )
    return int(cursor.lastrowid)


def _digest(rt: Runtime, ws: int) -> dict[str, str]:
    return capture.database_digest(rt.environment(ws, "test").read())


def test_restore_to_five_times_reproduces_each_state(runtime: Runtime, tmp_path: Path) -> None:
    rt, ws = runtime, 1
    db = rt.environment(ws, "test")
    service = pitr.BackupService(rt)
    service.start()  # first snapshots
    chosen: list[tuple[int, dict[str, str]]] = []

    def mark() -> None:
        time.sleep(0.002)
        chosen.append((pitr.now_us(), _digest(rt, ws)))
        time.sleep(0.002)

    ids = [db.write(lambda w, i=i: _theme(w, f"theme {i}", json.dumps({"i": i}))) for i in range(40)]
    mark()  # 1: inserts only
    db.write(
        lambda w: w.execute("UPDATE themes SET name = name || ' (edited)', font = 'Inter' WHERE id % 3 = 0")
    )
    db.write(lambda w: w.execute("DELETE FROM themes WHERE id % 5 = 0"))
    service.tick()  # shipped to the log
    mark()  # 2: after an update and a delete
    pitr.take_snapshot(rt, pitr.find_target(rt, "ws1-test"), "test")  # a later snapshot to start from
    for i in range(20):  # one transaction each, some of them grouped by the writer
        db.submit(lambda w, i=i: w.execute("UPDATE themes SET preset = ? WHERE id = ?", [f"p{i}", ids[i]]))
    db.write(lambda w: _theme(w, "quotes ' \" and unicode é ✓\nnew line"))
    mark()  # 3
    db.write(lambda w: w.execute("UPDATE themes SET id = 1000 WHERE id = ?", [ids[1]]))  # key change
    db.write(
        lambda w: w.execute(
            "INSERT OR REPLACE INTO themes (id, name, colours, created, updated) "
            "VALUES (1000, 'replaced', '{}', 'c', 'u')"
        )
    )
    service.tick()
    mark()  # 4
    db.write(lambda w: w.execute("DELETE FROM themes"))  # the accident
    mark()  # 5: everything gone
    db.write(lambda w: _theme(w, "after the last mark"))
    service.stop()

    digests = [d for _, d in chosen]
    assert len({json.dumps(d, sort_keys=True) for d in digests}) == 5, "the five states must differ"
    for n, (when, expected) in enumerate(chosen):
        target = tmp_path / f"restored-{n}"
        results = pitr.restore(rt, when, target, only="ws1-test")
        assert results[0].database == "ws1-test"
        restored = open_runtime(config.load(target))
        try:
            got = capture.database_digest(restored.environment(ws, "test").read())
        finally:
            restored.close()
        assert got == expected, f"restore to mark {n + 1} differs"
    # before the first snapshot nothing can be restored, and it says so
    with pytest.raises(pitr.RestoreError, match="no snapshot"):
        pitr.restore(rt, chosen[0][0] - 3_600_000_000, tmp_path / "too-early", only="ws1-test")


def test_in_place_restore_through_the_cli(tmp_path: Path) -> None:
    data = tmp_path / "data"
    rt, _ = initialise(data)
    try:
        ws = rt.create_workspace("inplace")
        db = rt.environment(ws, "test")
        service = pitr.BackupService(rt)
        service.start()
        for i in range(5):
            db.write(lambda w, i=i: _theme(w, f"keep {i}"))
        time.sleep(0.01)
        when = pitr.now_us()
        expected = _digest(rt, ws)
        time.sleep(0.01)
        db.write(lambda w: w.execute("DELETE FROM themes WHERE name LIKE 'keep%'"))
        with pytest.raises(pitr.RestoreError, match="server is running"):
            pitr.restore_in_place(lambda: open_runtime(config.load(data)), when)  # serve.lock is held
        service.stop()
    finally:
        rt.close()
    out = cli("restore", "--to", pitr.iso(when), "--workspace", str(ws), "--env", "test", data_dir=data)
    assert "restored to" in out.stdout
    rt = open_runtime(config.load(data))
    try:
        assert _digest(rt, ws) == expected
        # a new timeline: the restored database keeps capturing, and later restores still work
        rt.environment(ws, "test").write(lambda w: _theme(w, "new timeline"))
    finally:
        rt.close()
    assert cli("backup", "verify", data_dir=data).returncode == 0


def test_log_segments_are_sealed_and_tolerate_a_torn_tail(runtime: Runtime) -> None:
    rt = runtime
    db = rt.environment(1, "test")
    pitr.take_snapshot(rt, pitr.find_target(rt, "ws1-test"))
    db.write(lambda w: _theme(w, "sealed-marker-491"))
    target = pitr.find_target(rt, "ws1-test")
    assert pitr.ship(rt, target) >= 2  # the row and its commit marker
    db_dir = pitr.backup_root(rt) / "ws1-test"
    seg = pitr.list_segments(db_dir)[-1].path
    raw = seg.read_bytes()
    assert b"sealed-marker-491" not in raw and b"themes" not in raw
    rows = [r for rec in pitr.read_segment(seg, rt.keyring).records for r in rec]
    assert any("sealed-marker-491" in (r[6] or "") for r in rows)
    # a crash half-way through appending a record: the tail is ignored
    seg.write_bytes(raw + raw[-40:])
    assert pitr.read_segment(seg, rt.keyring).torn_tail
    assert [r for rec in pitr.read_segment(seg, rt.keyring).records for r in rec] == rows
    # a flipped bit inside an earlier record is tampering, not a torn tail
    db.write(lambda w: _theme(w, "second"))
    pitr.ship(rt, target)
    data = bytearray(seg.read_bytes())
    data[len(data) // 3] ^= 1
    seg.write_bytes(bytes(data))
    with pytest.raises(pitr.RestoreError):
        pitr.read_segment(seg, rt.keyring)
    # without the backup keys a segment is noise: the data-dir keys do not open it
    assert pitr.list_snapshots(db_dir)[0].path.read_bytes()[:16] != b"SQLite format 3\x00"


def test_retention_keeps_the_window_and_one_older_snapshot(runtime: Runtime) -> None:
    rt = runtime
    target = pitr.find_target(rt, "ws1-test")
    db = rt.environment(1, "test")
    snaps = []
    for i in range(4):
        db.write(lambda w, i=i: _theme(w, f"r{i}"))
        pitr.ship(rt, target)
        snaps.append(pitr.take_snapshot(rt, target))
        time.sleep(0.01)
    db_dir = pitr.backup_root(rt) / "ws1-test"
    # pretend "now" is retention_days after the third snapshot: the first two are outside the window
    now = snaps[2].taken_us + int(rt.settings.backup.retention_days * 86400e6) - 1
    removed = pitr.prune(rt, target, now=now)
    left = [s.path.name for s in pitr.list_snapshots(db_dir)]
    assert removed["snapshots"] == 1
    assert left == [s.path.name for s in snaps[1:]]
    # the oldest restorable time is now the second snapshot
    with pytest.raises(pitr.RestoreError):
        pitr.restore_file(
            rt.keyring, db_dir, snaps[0].taken_us, db_dir / "x.db", rt.keyring.get(target.key_name)
        )
