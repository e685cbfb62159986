"""Trackings routes of the Coassemble headless API: learner progress per course and per collection.
The rules and queries live in appliance.learners (`record_progress`, the one writer of tracking
rows, included); this module shapes the answers.

Spellings follow the cloud exactly, inconsistent as it is: `/trackings` rows are snake_case,
`/user/trackings` and webhooks are camelCase.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import sqlite_utils
from litestar import Controller, Request, delete, get
from litestar.params import QueryParameter

from appliance.errors import ApiError
from appliance.headless.common import as_int, as_str, loose_body, page_window
from appliance.headless.deps import set_target
from appliance.learners import progress, trackings
from appliance.storage.database import Database

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


def collection_tracking_to_wire(db: sqlite_utils.Database, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "collectionId": row["collection_id"],
        "identifier": row["identifier"],
        "clientIdentifier": row["client_identifier"],
        "name": row["name"],
        "commenced": row["commenced"],
        "completed": row["completed"],
        **progress.of_collection_tracking(db, row),
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
        where = trackings.TrackingFilter(course_id, identifier, client_identifier, start, end, completed)
        rows = trackings.list_for_course(db.read(), where, limit, offset)
        return [snake_row(r) for r in rows]

    @get("/tracking/{tracking_id:int}", summary="Get one tracking", sync_to_thread=False)
    def get_tracking(self, request: Request[Any, Any, Any], db: Database, tracking_id: int) -> dict[str, Any]:
        set_target(request, f"tracking:{tracking_id}")
        row = trackings.get(db.read(), tracking_id)
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
        assert course_id is not None and identifier is not None  # as_int/as_str refused a missing one
        await db.awrite(lambda w: trackings.delete(w, course_id, identifier))
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
        rows = trackings.with_avatars(db.read(), course_id, limit, offset)
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
        learner = trackings.of_learner(db.read(), identifier)
        user, rows = learner.user, learner.rows
        return {
            "identifier": identifier,
            "clientIdentifier": user["client_identifier"] if user else rows[0]["client_identifier"],
            "name": user["name"] if user else rows[0]["name"],
            "avatar": user["avatar"] if user else None,
            "totals": learner.totals,
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
        rows = progress.list_collection_trackings(reader, collection_id, limit, offset)
        return [collection_tracking_to_wire(reader, r) for r in rows]

    @get("/collection/tracking/{tracking_id:int}", summary="One collection tracking", sync_to_thread=False)
    def collection_tracking(
        self, request: Request[Any, Any, Any], db: Database, tracking_id: int
    ) -> dict[str, Any]:
        set_target(request, f"collection-tracking:{tracking_id}")
        reader = db.read()
        return collection_tracking_to_wire(reader, progress.get_collection_tracking(reader, tracking_id))
