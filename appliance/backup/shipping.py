"""Shipping: committed `_changes` rows move into the encrypted, append-only log.

What is durable when: a change is durable in the database at its commit (change capture writes
its `_changes` row in the same transaction). `ship` appends a batch of those rows as one record
to the database's current segment and fsyncs it (and the log directory, for a new segment)
*before* it deletes the rows from `_changes`, so a crash at any point loses nothing: either the
rows are still in `_changes`, or they are in the log (a crash between the fsync and the delete
ships them twice, and readers skip the duplicates by sequence number). A record that fails half
way (disk full) is cut off again, so it cannot hide the records appended after it; after a
segment a crash left with a torn last record the next record starts a new segment (the first
append of a process walks the segment's record headers); a new segment appears whole or not at
all (`appliance.storage.files`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from appliance.backup import keys
from appliance.backup.format import (
    as_change,
    encrypt_record,
    list_segments,
    log_key_name,
    now_us,
    read_header,
    read_segment,
    records_end,
    segment_header,
    segment_name,
)
from appliance.backup.targets import BackupLock, Backups, Target
from appliance.storage import files
from appliance.storage.capture import Change
from appliance.storage.database import Database
from appliance.storage.keyring import Keyring

log = logging.getLogger("appliance.backup")

SEGMENT_MAX_BYTES = 8 * 1024 * 1024
SEGMENT_MAX_AGE_US = 3600 * 1_000_000
SHIP_BATCH = 20_000


# segment -> its size after this process's last append: a segment of another size (the first
# append after a start) is checked for a torn last record before anything is appended to it
_clean_size: dict[Path, int] = {}


def _ends_cleanly(path: Path, file_header: bytes) -> bool:
    """Whether the segment ends with a whole record. A crash (kill -9, power loss) half way through
    an append leaves a torn last record; readers stop there, so a record appended after it would
    never be read: the next record starts a new segment instead (nothing is cut off: the header
    walk cannot tell a torn tail from a damaged header, and the bytes are evidence)."""
    size = path.stat().st_size
    if _clean_size.get(path) == size:
        return True
    end = records_end(path, file_header)
    if end < size:
        log.warning("log segment ends with a torn record (a crash while appending): a new segment starts",
                    extra={"fields": {"segment": path.name, "bytes": size - end}})
    return end == size


def append_to_log(keyring: Keyring, db_dir: Path, db_name: str, rows: list[Change]) -> Path:
    """Append one record to the current segment (or start a new one); fsynced when it returns."""
    gen = keys.current_generation(keyring)
    key_name = log_key_name(gen)
    key = keyring.get(key_name)
    log_dir = db_dir / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    segments = list_segments(db_dir)
    current = segments[-1] if segments else None
    file_header = b""
    if current is not None:
        found = read_header(current.path)
        if (
            found is not None
            and found[1].get("key") == key_name
            and current.path.stat().st_size < SEGMENT_MAX_BYTES
            and now_us() - current.created_us < SEGMENT_MAX_AGE_US
            and current.first_seq <= rows[0][0]
            and _ends_cleanly(current.path, found[0])
        ):
            file_header = found[0]
    if file_header and current is not None:
        files.durable_append(current.path, encrypt_record(key, file_header, rows))
        _clean_size[current.path] = current.path.stat().st_size
        return current.path
    created = now_us()
    file_header = segment_header(db_name, key_name, created)
    path = log_dir / segment_name(rows[0][0], created)
    files.durable_write(path, file_header + encrypt_record(key, file_header, rows))
    _clean_size[path] = path.stat().st_size
    return path


def iter_changes(db_dir: Path, keyring: Keyring, after_seq: int = 0) -> Iterator[Change]:
    """Every logged change with seq > after_seq, in order, each once."""
    segments = list_segments(db_dir)
    last = after_seq
    for i, seg in enumerate(segments):
        if i + 1 < len(segments) and segments[i + 1].first_seq <= after_seq + 1:
            continue  # wholly before the start point
        for rows in read_segment(seg.path, keyring).records:
            for row in rows:
                if row[0] > last:
                    last = row[0]
                    yield row


def _delete_shipped(database: Database, last: int) -> None:
    def job(db: Any) -> None:
        db.execute("DELETE FROM _changes WHERE seq <= ?", [last])

    database.write(job)


def ship(backups: Backups, target: Target, database: Database | None = None) -> int:
    """Move committed `_changes` rows to the encrypted log; returns how many were shipped."""
    database = database or backups.open_database(target)
    root = backups.root
    total = 0
    with BackupLock.of(root):
        while True:
            rows: list[Change] = [
                as_change(r)
                for r in database.read()
                .execute(
                    "SELECT seq, ts, tbl, op, pk, old_pk, row FROM _changes ORDER BY seq LIMIT ?",
                    [SHIP_BATCH],
                )
                .fetchall()
            ]
            if not rows:
                return total
            append_to_log(backups.keyring, root / target.name, target.name, rows)
            last = rows[-1][0]
            _delete_shipped(database, last)
            total += len(rows)
            if len(rows) < SHIP_BATCH:
                return total
