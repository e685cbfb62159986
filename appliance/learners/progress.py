"""A learner's progress through a collection: the collection's courses in order, each with the
learner's course tracking (none yet counts as 0 %)."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from appliance.errors import not_found
from appliance.learners import trackings
from appliance.storage.database import fetch_all, fetch_one


def collection_progress(
    db: sqlite_utils.Database, collection: dict[str, Any], identifier: str
) -> dict[str, Any]:
    course_ids: list[int] = json.loads(collection["course_ids"])
    per_course: list[dict[str, Any]] = []
    for seq, course_id in enumerate(course_ids):
        t = trackings.find(db, course_id, identifier)
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


def of_collection_tracking(db: sqlite_utils.Database, row: dict[str, Any]) -> dict[str, Any]:
    """The progress of one collection tracking row (empty when its collection is gone)."""
    collection = fetch_one(db, "SELECT * FROM collections WHERE id = ?", [row["collection_id"]])
    return collection_progress(db, collection, row["identifier"]) if collection else {}


def list_collection_trackings(
    db: sqlite_utils.Database, collection_id: int, limit: int, offset: int
) -> list[dict[str, Any]]:
    return fetch_all(
        db,
        "SELECT * FROM collection_trackings WHERE collection_id = ? ORDER BY id LIMIT ? OFFSET ?",
        [collection_id, limit, offset],
    )


def get_collection_tracking(db: sqlite_utils.Database, tracking_id: int) -> dict[str, Any]:
    row = fetch_one(db, "SELECT * FROM collection_trackings WHERE id = ?", [tracking_id])
    if row is None:
        raise not_found("Collection tracking")
    return row
