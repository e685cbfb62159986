"""Hard deletion that stays deleted: live database, change log, snapshots, files, restores.

`erase()` is what the deletion routes call (course purge, user, client, tracking delete)::

    from appliance.backup.erasure import erase

    def delete_rows(db):                       # runs in one write transaction
        db.execute("DELETE FROM trackings WHERE user_id = ?", [user_id])
        db.execute("DELETE FROM users WHERE id = ?", [user_id])

    report = erase(runtime.backups, workspace_id, environment, "user", user_id, delete_rows)

`delete_rows` must delete (or overwrite) *every* row that carries the subject's data: dependent
rows, webhook payloads, anything. Rows it UPDATEs count as anonymised: their older images are
replaced by the new one everywhere. Then, holding the backup lock so nothing ships or snapshots
half-way:

1. the transaction's captured changes name every deleted/updated row (table + key); unshipped
   `_changes` rows holding older images of them are removed/overwritten in the same transaction;
2. the live database: `secure_delete` + `wal_checkpoint(TRUNCATE)` + `VACUUM` + checkpoint;
3. the encrypted log: every segment holding an image of those rows is rewritten without it;
4. every snapshot of the database: rows deleted/overwritten, its `_changes` scrubbed, VACUUM;
5. the subject's key is shredded (its files, and every copy of them anywhere, become unreadable);
6. an erasure-ledger entry (ids only, the subject as a keyed hash) goes into the key store, which
   is outside the backups; every restore re-applies the ledger.

Nothing here needs the rows' content, so it works for whatever tables the routes delete from.
Cost: rewriting this database's log and snapshots (seconds per GB); see docs/operations.md.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from appliance.backup import ledger
from appliance.backup.format import SnapshotInfo, list_segments, list_snapshots, read_segment, write_segment
from appliance.backup.shipping import ship
from appliance.backup.targets import BackupLock, Backups, Target
from appliance.storage import capture
from appliance.storage.capture import Change
from appliance.storage.database import open_file
from appliance.storage.keyring import Keyring
from appliance.storage.objects import ObjectStore, hard_delete_recipe


@dataclass
class ErasureReport:
    ledger_id: int
    rows_deleted: dict[str, int] = field(default_factory=dict)
    rows_anonymised: dict[str, int] = field(default_factory=dict)
    segments_rewritten: int = 0
    snapshots_scrubbed: int = 0
    files_shredded: int = 0
    seconds: float = 0.0


def _scrub_changes(
    rows: list[Change], deleted: set[tuple[str, str]], images: dict[tuple[str, str], str]
) -> tuple[list[Change], bool]:
    out: list[Change] = []
    changed = False
    for row in rows:
        ident = (row[2], row[4] or "")
        if row[3] in ("I", "U") and ident in deleted:
            changed = True
            continue
        if row[3] in ("I", "U") and ident in images and row[6] != images[ident]:
            row = (row[0], row[1], row[2], row[3], row[4], row[5], images[ident])
            changed = True
        out.append(row)
    return out, changed


def erase(
    backups: Backups,
    workspace_id: int,
    environment: str,
    subject_kind: str,
    subject_id: str | int,
    delete_rows: Callable[[sqlite_utils.Database], Any],
) -> ErasureReport:
    """Hard-delete a subject everywhere (see the module docstring). Raises what `delete_rows`
    raises, in which case nothing was deleted."""
    started = time.monotonic()
    database = backups.environment(workspace_id, environment)
    target = Target(database.name, "", "", workspace_id, environment)
    root = backups.root
    store = backups.keystore
    subject = store.subject(workspace_id, environment, subject_kind, subject_id)

    with BackupLock.of(root):

        def job(db: sqlite_utils.Database) -> tuple[set[tuple[str, str]], dict[tuple[str, str], str]]:
            before = capture.current_seq(db)
            delete_rows(db)
            deleted: set[tuple[str, str]] = set()
            images: dict[tuple[str, str], str] = {}
            for _seq, tbl, op, pk, old_pk, row in db.execute(
                "SELECT seq, tbl, op, pk, old_pk, row FROM _changes WHERE seq > ? ORDER BY seq", [before]
            ).fetchall():
                if op == "D":
                    deleted.add((tbl, pk))
                    images.pop((tbl, pk), None)
                elif op in ("U", "I"):
                    images[(tbl, pk)] = row
                    if old_pk:
                        deleted.add((tbl, old_pk))
                    deleted.discard((tbl, pk))
            for tbl, pk in deleted:
                db.execute(
                    "DELETE FROM _changes WHERE seq <= ? AND tbl = ? AND pk = ? AND op IN ('I', 'U')",
                    [before, tbl, pk],
                )
            for (tbl, pk), row in images.items():
                db.execute(
                    "UPDATE _changes SET row = ? WHERE seq <= ? AND tbl = ? AND pk = ? AND op IN ('I', 'U')",
                    [row, before, tbl, pk],
                )
            return deleted, images

        deleted, images = database.write(job)
        report = ErasureReport(ledger_id=0)
        for tbl, _pk in deleted:
            report.rows_deleted[tbl] = report.rows_deleted.get(tbl, 0) + 1
        for tbl, _pk in images:
            report.rows_anonymised[tbl] = report.rows_anonymised.get(tbl, 0) + 1
        erased: ledger.LedgerRows = {}
        for tbl, pk in sorted(deleted):
            erased.setdefault(tbl, []).append(pk)
        report.ledger_id = ledger.record(
            store, workspace_id, environment, database.name, subject_kind, subject, erased
        )
        database.write(hard_delete_recipe, transactional=False)
        ship(backups, target, database)
        db_dir = root / database.name
        for seg in list_segments(db_dir):
            content = read_segment(seg.path, backups.keyring)
            changed = False
            records = []
            for rows in content.records:
                kept, touched = _scrub_changes(rows, deleted, images)
                changed = changed or touched
                records.append(kept)
            if changed:
                write_segment(seg.path, content.file_header, backups.keyring.get(content.header["key"]), records)
                report.segments_rewritten += 1
        for snap in list_snapshots(db_dir):
            _scrub_snapshot(backups.keyring, snap, deleted, images)
            report.snapshots_scrubbed += 1
        report.files_shredded = ObjectStore(backups).shred_subject(
            workspace_id, environment, subject_kind, subject_id
        )
    report.seconds = round(time.monotonic() - started, 3)
    return report


def _scrub_snapshot(
    keyring: Keyring,
    snap: SnapshotInfo,
    deleted: set[tuple[str, str]],
    images: dict[tuple[str, str], str],
) -> None:
    conn = open_file(snap.path, keyring.get(snap.key_name))
    try:
        keys = capture.key_columns(conn)
        seq = capture.current_seq(conn)
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("BEGIN IMMEDIATE")
        for tbl, pk in deleted:
            key = keys.get(tbl)
            if key is not None:
                values = [capture.decode(v) for v in json.loads(pk)]
                where = " AND ".join(f"{capture.q(c)} IS ?" for c in key)
                conn.execute(f"DELETE FROM {capture.q(tbl)} WHERE {where}", values)
            conn.execute("DELETE FROM _changes WHERE tbl = ? AND pk = ? AND op IN ('I', 'U')", [tbl, pk])
        for (tbl, pk), row in images.items():
            key = keys.get(tbl)
            if key is None:
                continue
            image = {k: capture.decode(v) for k, v in json.loads(row).items()}
            where = " AND ".join(f"{capture.q(c)} IS ?" for c in key)
            sets = ", ".join(f"{capture.q(c)} = ?" for c in image)
            conn.execute(
                f"UPDATE {capture.q(tbl)} SET {sets} WHERE {where}",
                [*image.values(), *[capture.decode(v) for v in json.loads(pk)]],
            )
            conn.execute(
                "UPDATE _changes SET row = ? WHERE tbl = ? AND pk = ? AND op IN ('I', 'U')", [row, tbl, pk]
            )
        # the capture triggers fired inside the snapshot: drop what they wrote, keep its sequence
        conn.execute("DELETE FROM _changes WHERE seq > ?", [seq])
        conn.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = '_changes'", [seq])
        conn.execute("COMMIT")
        conn.execute("VACUUM")
    finally:
        conn.close()
