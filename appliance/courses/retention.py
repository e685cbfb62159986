"""Retention: soft-deleted courses are hard-deleted (erased everywhere) after
`storage.purge_deleted_courses_days`. Runs hourly in the server; `purge_expired` is the whole job."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlite_utils

from appliance import logs
from appliance.backup import erasure
from appliance.runtime import Runtime
from appliance.storage.database import fetch_all

INTERVAL_SECONDS = 3600.0


def _delete_course(course_id: int) -> Callable[[sqlite_utils.Database], None]:
    def delete_rows(db: sqlite_utils.Database) -> None:
        db.execute("DELETE FROM trackings WHERE course_id = ?", [course_id])
        db.execute("DELETE FROM courses WHERE translation_of = ?", [course_id])
        db.execute("DELETE FROM webhook_outbox WHERE json_extract(body, '$.data.course.id') = ?", [course_id])
        db.execute("DELETE FROM courses WHERE id = ?", [course_id])

    return delete_rows


def purge_expired(runtime: Runtime, days: float, now: datetime | None = None) -> int:
    """Erase every course soft-deleted more than `days` ago, in every workspace environment."""
    if days <= 0:
        return 0
    cutoff = ((now or datetime.now(UTC)) - timedelta(days=days)).isoformat().replace("+00:00", "Z")
    purged = 0
    for workspace_id, environment in runtime.environment_ids():
        database = runtime.environment(workspace_id, environment)
        expired = fetch_all(
            database.read(), "SELECT id FROM courses WHERE deleted IS NOT NULL AND deleted < ?", [cutoff]
        )
        for row in expired:
            erasure.erase(
                runtime.backups, workspace_id, environment, "course", row["id"], _delete_course(row["id"])
            )
            purged += 1
    if purged:
        logs.event("purged soft-deleted courses", count=purged, older_than_days=days)
    return purged


class RetentionWorker:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(INTERVAL_SECONDS):
            try:
                purge_expired(self.runtime, self.runtime.settings.storage.purge_deleted_courses_days)
            except Exception as exc:  # retried next hour; never takes the server down
                logs.event("retention purge failed", level=40, error=type(exc).__name__)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
