"""`backup list` and `backup verify`: what can be restored, and proof that it restores.

`verify` ships what is pending, decrypts every segment and every snapshot, restores each database
from its oldest and its newest snapshot through the whole log into a scratch directory, and
compares the result with the live database; when the live database has no unshipped change, a
difference is a failure.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.backup.format import iso, list_segments, list_snapshots, read_segment
from appliance.backup.restore import restore_file
from appliance.backup.shipping import ship
from appliance.backup.targets import BackupLock, Backups, RestoreError
from appliance.storage import capture
from appliance.storage.crypto import KeyProblem
from appliance.storage.database import StorageError, open_file


def describe(backups: Backups) -> list[dict[str, Any]]:
    root = backups.root
    out = []
    for t in backups.targets():
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


def _difference(live: Any, restored: Any, table: str) -> str:
    """How one table differs, by rowid: what an operator (or a bug report) needs to go on."""
    select = f"SELECT rowid, * FROM {capture.q(table)}"
    a = {row[0]: row for row in live.execute(select).fetchall()}
    b = {row[0]: row for row in restored.execute(select).fetchall()}
    changed = {k for k in a.keys() & b.keys() if a[k] != b[k]}
    return (f"{len(a.keys() - b.keys())} rows only live, {len(b.keys() - a.keys())} only restored, "
            f"{len(changed)} changed; rowids {sorted((a.keys() ^ b.keys()) | changed)[:5]}")


def verify(backups: Backups) -> VerifyReport:
    """Decrypt every segment and snapshot, restore each database from its oldest and newest
    snapshot through the whole log, and compare with the live database when it is quiet."""
    root = backups.root
    keyring = backups.keyring
    lines: list[str] = []
    ok = True
    for t in backups.targets():
        db_dir = root / t.name
        database = backups.open_database(t)
        ship(backups, t, database)
        try:
            snaps = list_snapshots(db_dir)
            if not snaps:
                raise RestoreError("no snapshot yet")
            records = 0
            for seg in list_segments(db_dir):
                records += sum(len(r) for r in read_segment(seg.path, keyring).records)
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
                        res = restore_file(keyring, db_dir, None, out, keyring.get(t.key_name), [])
                        conn = open_file(out, keyring.get(t.key_name), readonly=True)
                        try:
                            digest = capture.database_digest(conn)
                            same = digest == live_digest
                            if not same and pending == 0:
                                differing = [k for k in digest if digest[k] != live_digest.get(k)]
                                raise RestoreError(
                                    f"restore from {snap.path.name} differs from the live database in "
                                    + ", ".join(f"{k} ({_difference(live, conn, k)})" for k in differing)
                                )
                        finally:
                            conn.close()
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
