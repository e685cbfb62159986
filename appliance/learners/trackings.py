"""Course trackings: one row per learner and course.

`record_progress` is the one writer of tracking rows (the embedded player and the SCORM runtime
call it); progress only ever increases. Everything else here reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlite_utils

from appliance import webhooks
from appliance.errors import Invalid, not_found
from appliance.learners.identities import find_user
from appliance.security.audit import now_iso
from appliance.storage.database import fetch_all, fetch_one

MAX_ATTEMPTS = 500  # the attempt log keeps the latest ones


def record_progress(
    db: sqlite_utils.Database,
    course_id: int,
    identifier: str,
    *,
    client_identifier: str | None = None,
    progress_percent: int | None = None,
    seconds: int = 0,
    attempt: dict[str, Any] | None = None,
    score: float | None = None,
    passed: bool | None = None,
    completed: bool = False,
    language: str | None = None,
    name: str | None = None,
    email: str | None = None,
    feedback: str | None = None,
    scorm: bool = False,
) -> tuple[dict[str, Any], list[str]]:
    """Create or advance one learner's tracking; returns the row and the events that just happened
    (`course.commenced` on the first record, `course.completed` on the first completion)."""
    now = now_iso()
    events: list[str] = []
    row = find(db, course_id, identifier)
    if row is None:
        db.execute(
            """INSERT INTO trackings (course_id, identifier, client_identifier, name, email, language, commenced,
               created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [course_id, identifier, client_identifier, name, email, language, now, now, now],
        )
        events.append("course.commenced")
        row = find(db, course_id, identifier)
        assert row is not None
    progress = max(row["progress_percent"], min(100, max(0, progress_percent or 0)))
    if completed:
        progress = 100
    attempts = json.loads(row["attempts"])
    if attempt is not None:
        attempts.append({**attempt, "time": now})
        attempts = attempts[-MAX_ATTEMPTS:]
    best_score = row["score"] if score is None else max(score, row["score"] or 0)
    best_passed = row["passed"] if passed is None else int(bool(passed) or bool(row["passed"]))
    completed_at = row["completed"]
    if completed and completed_at is None:
        completed_at = now
        events.append("course.completed")
    db.execute(
        """UPDATE trackings SET progress_percent = ?, total_time = total_time + ?, attempts = ?, score = ?,
           passed = ?, completed = ?, language = coalesce(?, language), feedback = coalesce(?, feedback),
           scorm = max(scorm, ?), updated = ? WHERE id = ?""",
        [
            progress,
            max(0, seconds),
            json.dumps(attempts),
            best_score,
            best_passed,
            completed_at,
            language,
            feedback,
            int(scorm),
            now,
            row["id"],
        ],
    )
    fresh = get(db, row["id"])
    if events:
        course = fetch_one(db, "SELECT * FROM courses WHERE id = ?", [course_id])
        data = {
            "course": webhooks.course_summary(course or {"id": course_id, "title": None, "key": None}),
            "tracking": webhooks.tracking_summary(fresh),
        }
        for event in events:
            webhooks.emit(db, event, data)
    return fresh, events


def find(db: sqlite_utils.Database, course_id: int, identifier: str) -> dict[str, Any] | None:
    return fetch_one(
        db, "SELECT * FROM trackings WHERE course_id = ? AND identifier = ?", [course_id, identifier]
    )


def get(db: sqlite_utils.Database, tracking_id: int) -> dict[str, Any]:
    row = fetch_one(db, "SELECT * FROM trackings WHERE id = ?", [tracking_id])
    if row is None:
        raise not_found("Tracking")
    return row


def _date(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).isoformat()
    except ValueError:
        raise Invalid(f"{name} must be an ISO 8601 date") from None


@dataclass(frozen=True)
class TrackingFilter:
    """Which of a course's trackings to list; `start`/`end` bound when the learner commenced."""

    course_id: int
    identifier: str | None = None
    client_identifier: str | None = None
    start: str | None = None
    end: str | None = None
    completed: bool = False


def list_for_course(
    db: sqlite_utils.Database, where: TrackingFilter, limit: int, offset: int
) -> list[dict[str, Any]]:
    clauses, params = ["course_id = ?"], list[Any]([where.course_id])
    for column, value in (("identifier", where.identifier), ("client_identifier", where.client_identifier)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if (since := _date(where.start, "start")) is not None:
        clauses.append("coalesce(commenced, created) >= ?")
        params.append(since)
    if (until := _date(where.end, "end")) is not None:
        clauses.append("coalesce(commenced, created) <= ?")
        params.append(until)
    if where.completed:
        clauses.append("completed IS NOT NULL")
    return fetch_all(
        db,
        f"SELECT * FROM trackings WHERE {' AND '.join(clauses)} ORDER BY id LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )


def delete(db: sqlite_utils.Database, course_id: int, identifier: str) -> None:
    cursor = db.execute("DELETE FROM trackings WHERE course_id = ? AND identifier = ?", [course_id, identifier])
    if cursor.rowcount == 0:
        raise not_found("Tracking")


def with_avatars(db: sqlite_utils.Database, course_id: int, limit: int, offset: int) -> list[dict[str, Any]]:
    """A course's trackings with each learner's avatar (screen-level progress)."""
    return fetch_all(
        db,
        """SELECT t.*, u.avatar AS avatar FROM trackings t LEFT JOIN users u ON u.identifier = t.identifier
           WHERE t.course_id = ? ORDER BY t.id LIMIT ? OFFSET ?""",
        [course_id, limit, offset],
    )


@dataclass(frozen=True)
class LearnerSummary:
    """One learner's trackings over every course and the totals over them."""

    user: dict[str, Any] | None
    rows: list[dict[str, Any]]
    totals: dict[str, Any]


def of_learner(db: sqlite_utils.Database, identifier: str) -> LearnerSummary:
    """A learner known as a user or by trackings alone (a SCORM learner has no user row)."""
    user = find_user(db, identifier)
    rows = fetch_all(db, "SELECT * FROM trackings WHERE identifier = ? ORDER BY id", [identifier])
    if user is None and not rows:
        raise not_found("User")
    scores = [r["score"] for r in rows if r["score"] is not None]
    totals = {
        "courses": len(rows),
        "commenced": sum(1 for r in rows if r["commenced"]),
        "completed": sum(1 for r in rows if r["completed"]),
        "totalTime": sum(r["total_time"] for r in rows),
        "averageProgress": round(sum(r["progress_percent"] for r in rows) / len(rows)) if rows else 0,
        "averageScore": round(sum(scores) / len(scores), 2) if scores else None,
    }
    return LearnerSummary(user=user, rows=rows, totals=totals)
