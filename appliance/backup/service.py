"""The server's backup thread: ships changes, takes snapshots when due, prunes hourly.

Started by the server, which holds `serve.lock` while it runs (so an in-place restore can tell
that a server is running). At start it removes half-written temporary files left by a crash and
snapshots every database that has none yet or whose schema changed (migrations start a new
snapshot). Every `backup.ship_interval_seconds` it ships each database's committed changes (how
much a crash of the whole machine can lose from the backups is the changes of that interval: they
are still in the database, and shipped at the next start). While the data disk is full nothing is
shipped (it would use the reserve); a full backup disk is logged once per episode and retried.
`stop()` ships what is left on a graceful shutdown.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable

from appliance.backup.format import list_snapshots, now_us
from appliance.backup.pruning import prune, prune_keys, remove_stale_temp_files
from appliance.backup.shipping import ship
from appliance.backup.snapshots import take_snapshot
from appliance.backup.targets import SERVE_LOCK, Backups, Target
from appliance.storage import diskfull
from appliance.storage.database import StorageError

log = logging.getLogger("appliance.backup")


class BackupService:
    """Ships changes every `ship_interval_seconds`, snapshots when due, prunes hourly; `on_tick`
    callables run on the same thread after each round (the server answers CLI requests there)."""

    def __init__(self, backups: Backups) -> None:
        self.backups = backups
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock_fd: int | None = None
        self._last_prune = 0.0
        self._backup_disk_full = False  # a full backup disk (not the data disk) is logged once
        self.stats: dict[str, float] = {"shipped": 0, "ship_seconds": 0.0, "ticks": 0, "errors": 0}
        self.on_tick: list[Callable[[], None]] = []

    def start(self) -> None:
        fd = os.open(self.backups.data_dir / SERVE_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StorageError("another server is running on this data directory") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd
        remove_stale_temp_files(self.backups.root)
        for t in self.backups.targets():  # migrations and first runs get their snapshot before serving
            self.backups.open_database(t)
            if self._snapshot_due(t, at_start=True):
                take_snapshot(self.backups, t, "start")
        self._thread = threading.Thread(target=self._loop, name="backup-shipper", daemon=True)
        self._thread.start()

    def _snapshot_due(self, target: Target, at_start: bool = False) -> bool:
        snaps = list_snapshots(self.backups.root / target.name)
        if not snaps:
            return True
        newest = snaps[-1]
        database = self.backups.open_database(target)
        version = int(database.read().execute("PRAGMA user_version").fetchone()[0])
        if newest.schema_version != version:
            return True
        interval_us = self.backups.snapshot_interval_hours * 3600e6
        return not at_start and now_us() - newest.taken_us > interval_us

    def _loop(self) -> None:
        while not self._stop.wait(self.backups.ship_interval_seconds):
            self.tick()

    def tick(self) -> None:
        self.stats["ticks"] += 1
        if not self.backups.disk.writable():
            return  # the data disk is full: shipping and snapshots wait (they would use the reserve)
        try:
            all_targets = self.backups.targets()
        except Exception as exc:
            self._error("list", exc)
            return
        failed = False
        for t in all_targets:
            try:
                started = time.perf_counter()
                self.stats["shipped"] += ship(self.backups, t)
                self.stats["ship_seconds"] += time.perf_counter() - started
                if self._snapshot_due(t):
                    take_snapshot(self.backups, t, "scheduled")
            except Exception as exc:  # disk full, backup path gone...: retried next tick
                failed = True
                self._error(t.name, exc)
        if self._backup_disk_full and not failed:
            self._backup_disk_full = False
            log.warning("backup disk has space again: shipping and snapshots resume")
        if time.monotonic() - self._last_prune > 3600:
            self._last_prune = time.monotonic()
            try:
                for t in all_targets:
                    prune(self.backups, t)
                prune_keys(self.backups)
            except Exception as exc:
                self._error("prune", exc)
        for hook in list(self.on_tick):
            try:
                hook()
            except Exception as exc:
                self._error("request", exc)

    def _error(self, where: str, exc: Exception) -> None:
        self.stats["errors"] += 1
        disk = self.backups.disk
        if diskfull.is_disk_full(exc):  # once per episode, not once a second
            if disk.same_disk(self.backups.root):
                disk.report(exc, f"backup {where}")
            elif not self._backup_disk_full:
                self._backup_disk_full = True
                log.error(
                    "backup disk full: shipping and snapshots wait for space (changes stay in the databases)",
                    extra={"fields": {"event": "backup_disk_full", "where": where, "error": diskfull.describe(exc)}},
                )
            return
        log.error(
            "backup step failed", extra={"fields": {"where": where, "error": f"{type(exc).__name__}: {exc}"}}
        )

    def stop(self) -> None:
        """Stop the thread and ship what is left (graceful shutdown)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        with contextlib.suppress(Exception):
            for t in self.backups.targets():
                ship(self.backups, t)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def start_backup_service(backups: Backups, on_tick: Iterable[Callable[[], None]] = ()) -> BackupService:
    """What the server starts: the shipper thread, running `on_tick` (e.g. the CLI's rekey
    requests) after each round."""
    service = BackupService(backups)
    service.on_tick.extend(on_tick)
    service.start()
    return service
