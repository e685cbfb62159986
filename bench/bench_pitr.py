"""Data-protection benchmark (issue 7): capture overhead, ship cost, snapshot and restore times.

Run: .venv/bin/python bench/bench_py [transactions]   (scratch data under /tmp)
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from appliance.backup.format import list_segments, list_snapshots
from appliance.backup.restore import restore_file
from appliance.backup.shipping import ship
from appliance.backup.snapshots import take_snapshot
from appliance.runtime import initialise
from appliance.storage import capture, crypto
from appliance.storage.database import Database


def _txn_rate(db: Database, seconds: float = 2.0) -> float:
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        db.write(
            lambda w: w.execute(
                "INSERT INTO themes (name, colours, created, updated) VALUES ('bench', '{\"a\": 1}', 'c', 'u')"
            )
        )
        n += 1
    return n / (time.perf_counter() - start)


def capture_ratio(tmp: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    for sync in ("NORMAL", "FULL"):
        rates: dict[str, list[float]] = {"off": [], "on": []}
        for _round in range(3):
            for mode in ("off", "on"):
                path = tmp / f"cap-{sync}-{mode}-{_round}.db"
                db = Database(path, crypto.new_key(), name="b", synchronous=sync)
                db.write(
                    lambda w: w.execute(
                        "CREATE TABLE themes (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, colours TEXT, "
                        "created TEXT, updated TEXT)"
                    )
                )
                if mode == "on":
                    capture.install(db)
                rates[mode].append(_txn_rate(db, 1.5))
                db.close()
        med = {k: sorted(v)[1] for k, v in rates.items()}
        out[f"{sync} txn/s capture off"] = round(med["off"])
        out[f"{sync} txn/s capture on"] = round(med["on"])
        out[f"{sync} ratio off/on"] = round(med["off"] / med["on"], 2)
    return out


def workload(tmp: Path, transactions: int) -> dict[str, Any]:
    rt, _ = initialise(tmp / "data")
    ws = rt.create_workspace("bench")
    db = rt.environment(ws, "test")
    target = rt.backups.find(f"ws{ws}-test")
    for t in rt.backups.targets():
        take_snapshot(rt.backups, t)
    body = json.dumps({"standard": {"primary": "#123456"}, "notes": "x" * 400})
    ship_s = 0.0
    start = time.perf_counter()
    for i in range(transactions):  # ~70% insert, 20% update, 10% delete; 1 kB-ish rows
        r = i % 10
        if r < 7:
            db.submit(
                lambda w, i=i: w.execute(
                    "INSERT INTO themes (name, colours, created, updated) VALUES (?, ?, 'c', 'u')",
                    [f"t{i}", body],
                )
            )
        elif r < 9:
            db.submit(
                lambda w, i=i: w.execute("UPDATE themes SET font = ? WHERE id = ?", [f"f{i}", i // 2 + 1])
            )
        else:
            db.submit(lambda w, i=i: w.execute("DELETE FROM themes WHERE id = ?", [i // 3 + 1]))
        if i % 2000 == 1999:
            db.write(lambda w: None)
            s = time.perf_counter()
            ship(rt.backups, target)
            ship_s += time.perf_counter() - s
    db.write(lambda w: None)
    s = time.perf_counter()
    ship(rt.backups, target)
    ship_s += time.perf_counter() - s
    write_s = time.perf_counter() - start
    log_bytes = sum(x.path.stat().st_size for x in list_segments(rt.backups.root / target.name))
    s = time.perf_counter()
    snap = take_snapshot(rt.backups, target, "bench")
    snap_s = time.perf_counter() - s
    size = snap.path.stat().st_size
    # restore from the first snapshot through the whole log (the worst case: a week of log)
    out = tmp / "restored.db"
    snaps = list_snapshots(rt.backups.root / target.name)
    s = time.perf_counter()
    res = restore_file(
        rt.keyring,
        rt.backups.root / target.name,
        snaps[-1].taken_us - 1,
        out,
        rt.keyring.get(target.key_name),
    )
    restore_s = time.perf_counter() - s
    rt.close()
    return {
        "transactions": transactions,
        "write seconds (incl. ship)": round(write_s, 2),
        "ship seconds total": round(ship_s, 3),
        "ship ms per 1000 changes": round(1000 * ship_s / max(1, res.changes_applied) * 1000, 2),
        "log bytes": log_bytes,
        "snapshot seconds": round(snap_s, 3),
        "snapshot MB": round(size / 1e6, 2),
        "snapshot s/GB": round(snap_s / (size / 1e9), 1),
        "restore seconds (full log replay)": round(restore_s, 2),
        "changes replayed": res.changes_applied,
        "replay changes/s": round(res.changes_applied / restore_s),
    }


def main() -> None:
    transactions = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    tmp = Path(tempfile.mkdtemp(prefix="bench-pitr-"))
    try:
        print(json.dumps(capture_ratio(tmp), indent=1))
        print(json.dumps(workload(tmp, transactions), indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
