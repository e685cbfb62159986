"""Retention: what is removed from the backup root, and when.

Within `backup.retention_days` every snapshot stays; of the older ones only the newest stays (a
restore to the start of the window starts from it), and log segments wholly before the oldest
kept snapshot go. Backup keys that no remaining snapshot or segment uses are then deleted from
the keyring (the current generation always stays), so expired backups copied elsewhere become
unreadable.
"""

from __future__ import annotations

from pathlib import Path

from appliance.backup import keys
from appliance.backup.format import (
    list_segments,
    list_snapshots,
    log_key_name,
    now_us,
    read_header,
    snapshot_key_name,
)
from appliance.backup.targets import BackupLock, Backups, RestoreError, Target


def prune(backups: Backups, target: Target, now: int | None = None) -> dict[str, int]:
    """Keep every snapshot of the retention window, the newest one before it, and the log after it."""
    root = backups.root
    cutoff = (now or now_us()) - int(backups.retention_days * 86400 * 1_000_000)
    removed = {"snapshots": 0, "segments": 0}
    with BackupLock.of(root):
        db_dir = root / target.name
        snaps = list_snapshots(db_dir)
        older = [s for s in snaps if s.taken_us < cutoff]
        for s in older[:-1]:
            s.path.unlink()
            removed["snapshots"] += 1
        kept = list_snapshots(db_dir)
        if kept:
            base = min(s.seq for s in kept)
            segments = list_segments(db_dir)
            for i, seg in enumerate(segments[:-1]):
                if segments[i + 1].first_seq <= base + 1 and seg.created_us < cutoff:
                    seg.path.unlink()
                    removed["segments"] += 1
    return removed


def prune_keys(backups: Backups) -> list[str]:
    """Remove backup keys no remaining snapshot or segment uses (the current generation stays)."""
    root = backups.root
    keyring = backups.keyring
    with BackupLock.of(root):
        current = keys.current_generation(keyring)
        used = {snapshot_key_name(current), log_key_name(current)}
        for db_dir in root.iterdir():
            if not db_dir.is_dir():
                continue
            used.update(s.key_name for s in list_snapshots(db_dir))
            for seg in list_segments(db_dir):
                found = read_header(seg.path)
                if found is None:  # its key is unknown: delete none rather than the wrong one
                    raise RestoreError(f"{seg.path}: not a log segment")
                used.add(found[1]["key"])
        gone = [n for n in keyring.names() if n.startswith("backup/") and n not in used]
        for name in gone:
            keyring.remove(name)
        return gone


def remove_stale_temp_files(root: Path) -> int:
    """Half-written snapshots and segment rewrites left by a crash (they hold data: remove them)."""
    n = 0
    with BackupLock.of(root):
        for path in list(root.glob("*/snapshots/.tmp-*")) + list(root.glob("*/log/.tmp-*")):
            path.unlink(missing_ok=True)
            n += 1
    return n
