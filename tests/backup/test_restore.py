"""Point-in-time restores reproduce the exact state at chosen times, into a new directory or in place."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from appliance import config
from appliance.backup.format import iso, now_us
from appliance.backup.restore import restore, restore_in_place
from appliance.backup.service import BackupService
from appliance.backup.snapshots import take_snapshot
from appliance.backup.targets import RestoreError
from appliance.runtime import Runtime, backups_of, initialise, open_runtime
from appliance.storage import capture
from tests.backup.rows import digest, theme
from tests.helpers import cli


def test_restore_to_five_times_reproduces_each_state(runtime: Runtime, tmp_path: Path) -> None:
    rt, ws = runtime, 1
    db = rt.environment(ws, "test")
    service = BackupService(rt.backups)
    service.start()  # first snapshots
    chosen: list[tuple[int, dict[str, str]]] = []

    def mark() -> None:
        time.sleep(0.002)
        chosen.append((now_us(), digest(rt, ws)))
        time.sleep(0.002)

    ids = [db.write(lambda w, i=i: theme(w, f"theme {i}", json.dumps({"i": i}))) for i in range(40)]
    mark()  # 1: inserts only
    db.write(
        lambda w: w.execute("UPDATE themes SET name = name || ' (edited)', font = 'Inter' WHERE id % 3 = 0")
    )
    db.write(lambda w: w.execute("DELETE FROM themes WHERE id % 5 = 0"))
    service.tick()  # shipped to the log
    mark()  # 2: after an update and a delete
    take_snapshot(rt.backups, rt.backups.find("ws1-test"), "test")  # a later snapshot to start from
    for i in range(20):  # one transaction each, some of them grouped by the writer
        db.submit(lambda w, i=i: w.execute("UPDATE themes SET preset = ? WHERE id = ?", [f"p{i}", ids[i]]))
    db.write(lambda w: theme(w, "quotes ' \" and unicode é ✓\nnew line"))
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
    db.write(lambda w: theme(w, "after the last mark"))
    service.stop()

    digests = [d for _, d in chosen]
    assert len({json.dumps(d, sort_keys=True) for d in digests}) == 5, "the five states must differ"
    for n, (when, expected) in enumerate(chosen):
        target = tmp_path / f"restored-{n}"
        results = restore(rt.backups, when, target, only="ws1-test")
        assert results[0].database == "ws1-test"
        restored = open_runtime(config.load(target))
        try:
            got = capture.database_digest(restored.environment(ws, "test").read())
        finally:
            restored.close()
        assert got == expected, f"restore to mark {n + 1} differs"
    # before the first snapshot nothing can be restored, and it says so
    with pytest.raises(RestoreError, match="no snapshot"):
        restore(rt.backups, chosen[0][0] - 3_600_000_000, tmp_path / "too-early", only="ws1-test")


def test_in_place_restore_through_the_cli(tmp_path: Path) -> None:
    data = tmp_path / "data"
    rt, _ = initialise(data)
    try:
        ws = rt.create_workspace("inplace")
        db = rt.environment(ws, "test")
        service = BackupService(rt.backups)
        service.start()
        for i in range(5):
            db.write(lambda w, i=i: theme(w, f"keep {i}"))
        time.sleep(0.01)
        when = now_us()
        expected = digest(rt, ws)
        time.sleep(0.01)
        db.write(lambda w: w.execute("DELETE FROM themes WHERE name LIKE 'keep%'"))
        with pytest.raises(RestoreError, match="server is running"):
            restore_in_place(lambda: backups_of(lambda: open_runtime(config.load(data))), when)  # serve.lock is held
        service.stop()
    finally:
        rt.close()
    out = cli("restore", "--to", iso(when), "--workspace", str(ws), "--env", "test", data_dir=data)
    assert "restored to" in out.stdout
    rt = open_runtime(config.load(data))
    try:
        assert digest(rt, ws) == expected
        # a new timeline: the restored database keeps capturing, and later restores still work
        rt.environment(ws, "test").write(lambda w: theme(w, "new timeline"))
    finally:
        rt.close()
    assert cli("backup", "verify", data_dir=data).returncode == 0


def test_verify_names_the_rows_a_restore_would_not_reproduce(runtime: Runtime) -> None:
    """A change the log never saw (here: written with capture's triggers dropped) makes `backup
    verify` fail, naming the table and the rows, so an operator (or a bug report) has something to go on."""
    from appliance.backup.verify import verify

    rt, ws = runtime, 1
    db = rt.environment(ws, "test")
    service = BackupService(rt.backups)
    service.start()  # first snapshots
    try:
        ids = [db.write(lambda w, i=i: theme(w, f"theme {i}")) for i in range(3)]
        assert verify(rt.backups).ok

        def unlogged(w: Any) -> None:
            capture.drop_triggers(w)
            w.execute("UPDATE themes SET name = 'changed behind the log' WHERE id = ?", [ids[1]])

        db.write(unlogged)
        report = verify(rt.backups)
    finally:
        service.stop()
    assert not report.ok
    failed = [line for line in report.lines if line.startswith("FAIL")]
    assert len(failed) == 1 and "differs from the live database in themes (0 rows only live, 0 only restored, 1 changed" in failed[0], failed
    assert f"rowids [{ids[1]}]" in failed[0], failed
