"""The webhook outbox: events become rows in the same transaction as the change that caused them.

Other features call `emit` from inside a writer job (`Database.write` / `Database.awrite`), with the
job's own `sqlite_utils.Database`:

    from appliance.webhooks import emit, course_summary, tracking_summary

    def job(w: sqlite_utils.Database) -> ...:
        ...  # mark the tracking commenced
        emit(w, "course.commenced", {"course": course_summary(course_row),
                                     "tracking": tracking_summary(tracking_row)})

`emit` writes one `webhook_outbox` row per enabled endpoint subscribed to the event, holding the exact
body Coassemble's webhooks carry (`id`, `type`, `occurredAt`, `workspaceId`, `data`). If the job
fails or rolls back, the rows go with it; once it commits, the delivery worker (appliance.webhooks
.worker) sends them, and a restart loses none of them. Call it only when the event really happens
(the first commencement, the first completion, the creation), not on every update.
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlite_utils

from appliance.security.audit import now_iso
from appliance.storage.database import fetch_one, last_id

EVENTS = ("course.created", "course.commenced", "course.completed")
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"

class Wakeup:
    """An outbox's doorbell: writers ring it when rows may be due; its delivery worker sleeps until
    it rings or its poll interval passes (the worker also polls on its own). The LRS outbox
    (appliance.xapi.outbox) has its own."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def wake(self) -> None:
        self._event.set()

    def wait_for_work(self, timeout: float) -> bool:
        """Sleep until `wake()` or the timeout; True if woken."""
        woken = self._event.wait(timeout)
        self._event.clear()
        return woken


_doorbell = Wakeup()
wake = _doorbell.wake  # tell the delivery worker that new rows may be due
wait_for_work = _doorbell.wait_for_work


def iso(moment: datetime) -> str:
    """Timestamps in the same fixed-width form as `now_iso` (they are compared as text)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def occurred_now() -> str:
    """`occurredAt` as the cloud writes it: milliseconds, `Z`."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def course_summary(course: dict[str, Any]) -> dict[str, Any]:
    """The `data.course` object of a webhook body, from a `courses` row."""
    return {
        "id": course["id"],
        "title": course["title"],
        "key": course["key"],
        "clientIdentifier": course.get("client_identifier"),
    }


def tracking_summary(tracking: dict[str, Any]) -> dict[str, Any]:
    """The `data.tracking` object of a webhook body (camelCase), from a `trackings` row."""
    return {
        "id": tracking["id"],
        "identifier": tracking["identifier"],
        "email": tracking.get("email"),
        "commenced": tracking.get("commenced"),
        "completed": tracking.get("completed"),
        "totalTime": tracking.get("total_time", 0),
    }


def _workspace_id(w: sqlite_utils.Database) -> int:
    row = w.execute("SELECT v FROM app_meta WHERE k = 'workspace_id'").fetchone()
    if row is None:
        raise ValueError("not an environment database (no workspace_id in app_meta)")
    return int(row[0])


def _insert(
    w: sqlite_utils.Database,
    endpoint_id: int,
    event: str,
    data: dict[str, Any],
    workspace_id: int,
    occurred_at: str,
    test: bool,
) -> str:
    delivery_id = str(uuid.uuid4())
    body: dict[str, Any] = {
        "id": delivery_id,
        "type": event,
        "occurredAt": occurred_at,
        "workspaceId": workspace_id,
        "data": data,
    }
    if test:
        body["test"] = True
    now = now_iso()
    w.execute(
        "INSERT INTO webhook_outbox (delivery_id, endpoint_id, event, body, test, status, attempts,"
        " next_attempt, created) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?)",
        [delivery_id, endpoint_id, event, json.dumps(body, separators=(",", ":")), int(test), now, now],
    )
    return delivery_id


def emit(
    w: sqlite_utils.Database,
    event: str,
    data: dict[str, Any],
    workspace_id: int | None = None,
    *,
    occurred_at: str | None = None,
) -> list[str]:
    """Queue `event` for every enabled endpoint subscribed to it; returns the delivery ids.

    `w` is the writer connection of an environment database, inside a writer job, so the rows commit
    (or roll back) with the change that caused the event. `data` is the body's `data` object, e.g.
    `{"course": course_summary(row)}` for `course.created`, plus `"tracking":
    tracking_summary(row)` for `course.commenced` and `course.completed`. `workspace_id` defaults to
    the database's own workspace. Never raises for "no subscribers": that is an empty list.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    ws = _workspace_id(w) if workspace_id is None else workspace_id
    when = occurred_at or occurred_now()
    ids = []
    for endpoint_id, events in w.execute(
        "SELECT id, events FROM webhook_endpoints WHERE enabled = 1 ORDER BY id"
    ).fetchall():
        if event in json.loads(events):
            ids.append(_insert(w, endpoint_id, event, data, ws, when, False))
    if ids:
        wake()
    return ids


def sample_data(w: sqlite_utils.Database, event: str) -> dict[str, Any]:
    """Data for a test delivery: a real course of the environment if there is one, a sample learner."""
    row = fetch_one(w, "SELECT * FROM courses WHERE deleted IS NULL ORDER BY id LIMIT 1")
    if row is not None:
        course = course_summary(row)
    else:
        course = {"id": 0, "title": "Sample course", "key": "sample-course", "clientIdentifier": None}
    data: dict[str, Any] = {"course": course}
    if event != "course.created":
        now = datetime.now(UTC)
        data["tracking"] = {
            "id": 0,
            "identifier": "test-learner",
            "email": "test-learner@example.invalid",
            "commenced": iso(now - timedelta(seconds=870)),
            "completed": iso(now) if event == "course.completed" else None,
            "totalTime": 870,
        }
    return data


def enqueue_test(w: sqlite_utils.Database, endpoint_id: int, event: str) -> str:
    """Queue a test delivery (body flag `"test": true`) to one endpoint, enabled or not."""
    delivery_id = _insert(
        w, endpoint_id, event, sample_data(w, event), _workspace_id(w), occurred_now(), True
    )
    return delivery_id


def retry_delay(attempts_made: int, base: float, cap: float) -> float:
    """Exponential backoff with ±20 % jitter: base, 2·base, 4·base, … capped at `cap`."""
    delay = min(cap, base * (2 ** max(0, attempts_made - 1)))
    return float(delay * random.uniform(0.8, 1.2))


def record_attempt(
    w: sqlite_utils.Database,
    outbox_id: int,
    *,
    status_code: int | None,
    error: str | None,
    duration_ms: float,
    max_attempts: int,
    backoff_base: float,
    backoff_max: float,
) -> str | None:
    """Log one attempt and move the row on (delivered, failed or rescheduled); returns its status."""
    row = w.execute("SELECT attempts FROM webhook_outbox WHERE id = ?", [outbox_id]).fetchone()
    if row is None:  # the endpoint was deleted meanwhile (its rows cascade away)
        return None
    now = now_iso()
    w.execute(
        "INSERT INTO webhook_attempts (outbox_id, time, status_code, error, duration_ms) VALUES (?,?,?,?,?)",
        [outbox_id, now, status_code, error, round(duration_ms, 3)],
    )
    attempts = int(row[0]) + 1
    if error is None and status_code is not None and 200 <= status_code < 300:
        w.execute(
            "UPDATE webhook_outbox SET status = 'delivered', attempts = ?, delivered = ?, last_error = NULL"
            " WHERE id = ?",
            [attempts, now, outbox_id],
        )
        return DELIVERED
    message = error or f"HTTP {status_code}"
    if attempts >= max_attempts:
        w.execute(
            "UPDATE webhook_outbox SET status = 'failed', attempts = ?, last_error = ? WHERE id = ?",
            [attempts, message, outbox_id],
        )
        return FAILED
    due = datetime.now(UTC) + timedelta(seconds=retry_delay(attempts, backoff_base, backoff_max))
    w.execute(
        "UPDATE webhook_outbox SET attempts = ?, next_attempt = ?, last_error = ? WHERE id = ?",
        [attempts, iso(due), message, outbox_id],
    )
    return PENDING


def prune(w: sqlite_utils.Database, older_than_days: float) -> int:
    """Forget finished deliveries (and their attempts) older than the retention period."""
    cutoff = iso(datetime.now(UTC) - timedelta(days=older_than_days))
    cursor = w.execute(
        "DELETE FROM webhook_outbox WHERE status IN ('delivered', 'failed') AND created < ?", [cutoff]
    )
    return int(cursor.rowcount or 0)


def insert_endpoint(w: sqlite_utils.Database, url: str, events: list[str], enabled: bool, secret: str) -> int:
    now = now_iso()
    cursor = w.execute(
        "INSERT INTO webhook_endpoints (url, events, enabled, secret, created, updated) VALUES (?,?,?,?,?,?)",
        [url, json.dumps(events), int(enabled), secret, now, now],
    )
    return last_id(cursor)
