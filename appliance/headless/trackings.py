"""Trackings (coassemble-api.md §2.3): learner progress per course and per collection.

Spellings follow the cloud exactly, inconsistent as it is: `/trackings` rows are snake_case,
`/user/trackings` and webhooks are camelCase. `record_progress` is the one writer of tracking
rows (the player and SCORM runtimes call it); progress only ever increases.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import sqlite_utils
from litestar import Controller, Request, delete, get
from litestar.params import QueryParameter

from appliance import webhooks
from appliance.errors import ApiError, not_found
from appliance.headless.common import as_int, as_str, loose_body, page_window
from appliance.headless.deps import set_target
from appliance.security.audit import now_iso
from appliance.storage.database import Database, fetch_all, fetch_one

ClientIdentifier = Annotated[str | None, QueryParameter(name="clientIdentifier")]


# -- wire shapes ------------------------------------------------------------------------------------
def snake_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "identifier": row["identifier"],
        "email": row["email"],
        "name": row["name"],
        "commenced": row["commenced"],
        "completed": row["completed"],
        "passed": None if row["passed"] is None else bool(row["passed"]),
        "progress_percent": row["progress_percent"],
        "score": row["score"],
        "total_time": row["total_time"],
        "feedback": row["feedback"],
        "language": row["language"],
        "scorm": bool(row["scorm"]),
    }


def camel_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "identifier": row["identifier"],
        "clientIdentifier": row["client_identifier"],
        "courseId": row["course_id"],
        "collectionTrackingId": row["collection_tracking_id"],
        "email": row["email"],
        "name": row["name"],
        "commenced": row["commenced"],
        "completed": row["completed"],
        "totalTime": row["total_time"],
        "scorePercent": row["score"],
        "progressPercent": row["progress_percent"],
        "passed": None if row["passed"] is None else bool(row["passed"]),
        "feedback": row["feedback"],
        "language": row["language"],
        "referrer": row["referrer"],
        "attempts": json.loads(row["attempts"]),
        "created": row["created"],
        "updated": row["updated"],
        "deleted": None,
    }


# -- services ---------------------------------------------------------------------------------------
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
    row = fetch_one(
        db, "SELECT * FROM trackings WHERE course_id = ? AND identifier = ?", [course_id, identifier]
    )
    if row is None:
        db.execute(
            """INSERT INTO trackings (course_id, identifier, client_identifier, name, email, language, commenced,
               created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [course_id, identifier, client_identifier, name, email, language, now, now, now],
        )
        events.append("course.commenced")
        row = fetch_one(
            db, "SELECT * FROM trackings WHERE course_id = ? AND identifier = ?", [course_id, identifier]
        )
        assert row is not None
    progress = max(row["progress_percent"], min(100, max(0, progress_percent or 0)))
    if completed:
        progress = 100
    attempts = json.loads(row["attempts"])
    if attempt is not None:
        attempts.append({**attempt, "time": now})
        attempts = attempts[-500:]
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
    fresh = fetch_one(db, "SELECT * FROM trackings WHERE id = ?", [row["id"]])
    assert fresh is not None
    if events:
        course = fetch_one(db, "SELECT * FROM courses WHERE id = ?", [course_id])
        data = {
            "course": webhooks.course_summary(course or {"id": course_id, "title": None, "key": None}),
            "tracking": webhooks.tracking_summary(fresh),
        }
        for event in events:
            webhooks.emit(db, event, data)
    return fresh, events


def _date(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).isoformat()
    except ValueError:
        raise ApiError(422, f"{name} must be an ISO 8601 date") from None


def collection_progress(
    db: sqlite_utils.Database, collection: dict[str, Any], identifier: str
) -> dict[str, Any]:
    course_ids: list[int] = json.loads(collection["course_ids"])
    per_course: list[dict[str, Any]] = []
    for seq, course_id in enumerate(course_ids):
        t = fetch_one(
            db, "SELECT * FROM trackings WHERE course_id = ? AND identifier = ?", [course_id, identifier]
        )
        per_course.append(
            {
                "courseId": course_id,
                "sequence": seq,
                "progressPercent": t["progress_percent"] if t else 0,
                "completed": t["completed"] if t else None,
                "totalTime": t["total_time"] if t else 0,
            }
        )
    total = sum(int(c["progressPercent"]) for c in per_course)
    return {
        "progressPercent": round(total / len(per_course)) if per_course else 0,
        "totalTime": sum(c["totalTime"] for c in per_course),
        "courses": per_course,
    }


def collection_tracking_to_wire(db: sqlite_utils.Database, row: dict[str, Any]) -> dict[str, Any]:
    collection = fetch_one(db, "SELECT * FROM collections WHERE id = ?", [row["collection_id"]])
    progress = collection_progress(db, collection, row["identifier"]) if collection else {}
    return {
        "id": row["id"],
        "collectionId": row["collection_id"],
        "identifier": row["identifier"],
        "clientIdentifier": row["client_identifier"],
        "name": row["name"],
        "commenced": row["commenced"],
        "completed": row["completed"],
        **progress,
    }


# -- routes -----------------------------------------------------------------------------------------
class TrackingsController(Controller):
    tags = ["Trackings"]

    @get("/trackings", summary="List a course's trackings", sync_to_thread=False)
    def list_trackings(
        self,
        request: Request[Any, Any, Any],
        db: Database,
        course_id: Annotated[int | None, QueryParameter(name="id")] = None,
        identifier: str | None = None,
        client_identifier: ClientIdentifier = None,
        start: str | None = None,
        end: str | None = None,
        completed: bool = False,
        page: int = 0,
        length: int = 100,
    ) -> list[dict[str, Any]]:
        if course_id is None:
            raise ApiError(422, "id (the course id) is required")
        set_target(request, f"course:{course_id}")
        limit, offset = page_window(page, length)
        where, params = ["course_id = ?"], list[Any]([course_id])
        for column, value in (("identifier", identifier), ("client_identifier", client_identifier)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if (since := _date(start, "start")) is not None:
            where.append("coalesce(commenced, created) >= ?")
            params.append(since)
        if (until := _date(end, "end")) is not None:
            where.append("coalesce(commenced, created) <= ?")
            params.append(until)
        if completed:
            where.append("completed IS NOT NULL")
        rows = fetch_all(
            db.read(),
            f"SELECT * FROM trackings WHERE {' AND '.join(where)} ORDER BY id LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return [snake_row(r) for r in rows]

    @get("/tracking/{tracking_id:int}", summary="Get one tracking", sync_to_thread=False)
    def get_tracking(self, request: Request[Any, Any, Any], db: Database, tracking_id: int) -> dict[str, Any]:
        set_target(request, f"tracking:{tracking_id}")
        row = fetch_one(db.read(), "SELECT * FROM trackings WHERE id = ?", [tracking_id])
        if row is None:
            raise not_found("Tracking")
        return {
            **snake_row(row),
            "course_id": row["course_id"],
            "client_identifier": row["client_identifier"],
        }

    @delete("/tracking", summary="Delete one learner's tracking for a course", status_code=200)
    async def delete_tracking(self, request: Request[Any, Any, Any], db: Database) -> dict[str, Any]:
        values = await loose_body(request)
        course_id = as_int(values, "id")
        identifier = as_str(values, "identifier")
        set_target(request, f"course:{course_id}")

        def job(w: sqlite_utils.Database) -> None:
            cursor = w.execute(
                "DELETE FROM trackings WHERE course_id = ? AND identifier = ?", [course_id, identifier]
            )
            if cursor.rowcount == 0:
                raise not_found("Tracking")

        await db.awrite(job)
        return {"message": "Tracking record deleted"}

    @get("/screen/trackings", summary="Screen-level progress of a course", sync_to_thread=False)
    def screen_trackings(
        self,
        request: Request[Any, Any, Any],
        db: Database,
        course_id: Annotated[int | None, QueryParameter(name="id")] = None,
        page: int = 0,
        length: int = 100,
    ) -> list[dict[str, Any]]:
        if course_id is None:
            raise ApiError(422, "id (the course id) is required")
        set_target(request, f"course:{course_id}")
        limit, offset = page_window(page, length)
        rows = fetch_all(
            db.read(),
            """SELECT t.*, u.avatar AS avatar FROM trackings t LEFT JOIN users u ON u.identifier = t.identifier
               WHERE t.course_id = ? ORDER BY t.id LIMIT ? OFFSET ?""",
            [course_id, limit, offset],
        )
        return [
            {
                "id": r["id"],
                "identifier": r["identifier"],
                "clientIdentifier": r["client_identifier"],
                "name": r["name"],
                "avatar": r["avatar"],
                "language": r["language"],
                "commenced": r["commenced"],
                "completed": r["completed"],
                "progressPercent": r["progress_percent"],
                "attempts": json.loads(r["attempts"]),
            }
            for r in rows
        ]

    @get("/user/trackings", summary="All trackings of one user", sync_to_thread=False)
    def user_trackings(
        self,
        request: Request[Any, Any, Any],
        db: Database,
        identifier: str | None = None,
        page: int = 0,
        length: int = 100,
    ) -> dict[str, Any]:
        if not identifier:
            raise ApiError(422, "identifier is required")
        set_target(request, "user")
        limit, offset = page_window(page, length)
        reader = db.read()
        user = fetch_one(reader, "SELECT * FROM users WHERE identifier = ?", [identifier])
        rows = fetch_all(reader, "SELECT * FROM trackings WHERE identifier = ? ORDER BY id", [identifier])
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
        return {
            "identifier": identifier,
            "clientIdentifier": user["client_identifier"] if user else rows[0]["client_identifier"],
            "name": user["name"] if user else rows[0]["name"],
            "avatar": user["avatar"] if user else None,
            "totals": totals,
            "trackings": [camel_row(r) for r in rows[offset : offset + limit]],
        }

    @get("/collection/trackings", summary="Learners' progress through a collection", sync_to_thread=False)
    def collection_trackings(
        self,
        request: Request[Any, Any, Any],
        db: Database,
        collection_id: Annotated[int | None, QueryParameter(name="id")] = None,
        page: int = 0,
        length: int = 100,
    ) -> list[dict[str, Any]]:
        if collection_id is None:
            raise ApiError(422, "id (the collection id) is required")
        set_target(request, f"collection:{collection_id}")
        limit, offset = page_window(page, length)
        reader = db.read()
        rows = fetch_all(
            reader,
            "SELECT * FROM collection_trackings WHERE collection_id = ? ORDER BY id LIMIT ? OFFSET ?",
            [collection_id, limit, offset],
        )
        return [collection_tracking_to_wire(reader, r) for r in rows]

    @get("/collection/tracking/{tracking_id:int}", summary="One collection tracking", sync_to_thread=False)
    def collection_tracking(
        self, request: Request[Any, Any, Any], db: Database, tracking_id: int
    ) -> dict[str, Any]:
        set_target(request, f"collection-tracking:{tracking_id}")
        reader = db.read()
        row = fetch_one(reader, "SELECT * FROM collection_trackings WHERE id = ?", [tracking_id])
        if row is None:
            raise not_found("Collection tracking")
        return collection_tracking_to_wire(reader, row)
