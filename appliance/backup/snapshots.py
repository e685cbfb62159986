"""Snapshots: a consistent, encrypted copy of one covered database.

A snapshot is taken inside one read transaction, so the image, the change sequence it includes
(`seq`) and its time agree; it is written under a temporary name, fsynced and renamed (durable
once its directory is fsynced), so a crash leaves either the whole snapshot or a `.tmp-*` file
that the service removes at start. Its name records the time, the sequence, the schema version
and the backup-key generation (see `format`).
"""

from __future__ import annotations

import logging
import time

from appliance.backup import keys
from appliance.backup.format import SnapshotInfo, snapshot_key_name, snapshot_name
from appliance.backup.targets import BackupLock, Backups, Target
from appliance.storage import capture, files
from appliance.storage.database import connect, open_file

log = logging.getLogger("appliance.backup")


def take_snapshot(backups: Backups, target: Target, reason: str = "manual") -> SnapshotInfo:
    root = backups.root
    with BackupLock.of(root):
        gen = keys.current_generation(backups.keyring)
        key = backups.keyring.get(snapshot_key_name(gen))
        snap_dir = root / target.name / "snapshots"
        snap_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        src = connect(backups.data_dir / target.rel_path, backups.keyring.get(target.key_name))
        tmp = files.temp_name(snap_dir / "snapshot")
        try:
            src.execute("BEGIN")  # one read transaction: a consistent image, and seq/taken agree with it
            seq = capture.current_seq(src)
            version = int(src.execute("PRAGMA user_version").fetchone()[0])
            taken = capture.commit_time_us()
            dst = open_file(tmp, key)
            try:
                src.backup(dst)
            finally:
                dst.close()
            src.execute("COMMIT")
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            src.close()
        final = snap_dir / snapshot_name(taken, seq, version, gen)
        files.durable_replace(tmp, final)
        log.info(
            "snapshot taken",
            extra={
                "fields": {
                    "database": target.name,
                    "reason": reason,
                    "seconds": round(time.monotonic() - started, 3),
                    "bytes": final.stat().st_size,
                }
            },
        )
        return SnapshotInfo(final, taken, seq, version, gen)
