"""Retention: the window and one older snapshot stay, with the log after it."""


from __future__ import annotations

import time

import pytest

from appliance.backup.format import list_snapshots
from appliance.backup.pruning import prune
from appliance.backup.restore import restore_file
from appliance.backup.shipping import ship
from appliance.backup.snapshots import take_snapshot
from appliance.backup.targets import RestoreError
from appliance.runtime import Runtime
from tests.backup.rows import theme


def test_retention_keeps_the_window_and_one_older_snapshot(runtime: Runtime) -> None:
    rt = runtime
    target = rt.backups.find("ws1-test")
    db = rt.environment(1, "test")
    snaps = []
    for i in range(4):
        db.write(lambda w, i=i: theme(w, f"r{i}"))
        ship(rt.backups, target)
        snaps.append(take_snapshot(rt.backups, target))
        time.sleep(0.01)
    db_dir = rt.backups.root / "ws1-test"
    # pretend "now" is retention_days after the third snapshot: the first two are outside the window
    now = snaps[2].taken_us + int(rt.settings.backup.retention_days * 86400e6) - 1
    removed = prune(rt.backups, target, now=now)
    left = [s.path.name for s in list_snapshots(db_dir)]
    assert removed["snapshots"] == 1
    assert left == [s.path.name for s in snaps[1:]]
    # the oldest restorable time is now the second snapshot
    with pytest.raises(RestoreError):
        restore_file(
            rt.keyring, db_dir, snaps[0].taken_us, db_dir / "x.db", rt.keyring.get(target.key_name)
        )
