"""Collections: ordered groups of courses, shared and tracked together."""

from __future__ import annotations

import json
from typing import Annotated, Any

import msgspec
import sqlite_utils
from litestar import Controller, Request, delete, get, post

from appliance.courses.model import new_course_key
from appliance.errors import ApiError, not_found
from appliance.headless.common import page_window
from appliance.headless.deps import set_target
from appliance.learners.identities import ensure_identity
from appliance.security.audit import now_iso
from appliance.storage.database import Database, fetch_all, fetch_one, last_id


class CollectionInput(msgspec.Struct):
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
    description: Annotated[str, msgspec.Meta(max_length=5000)] = ""
    courseIds: Annotated[list[int], msgspec.Meta(max_length=200)] = msgspec.field(default_factory=list)
    identifier: str | None = None
    clientIdentifier: str | None = None
    themeId: int | None = None


def collection_to_wire(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "title": row["title"],
        "description": row["description"],
        "key": row["key"],
        "active": bool(row["active"]),
        "identifier": row["identifier"],
        "clientIdentifier": row["client_identifier"],
        "themeId": row["theme_id"],
        "courseIds": json.loads(row["course_ids"]),
        "created": row["created"],
        "updated": row["updated"],
        "deleted": row["deleted"],
    }


def get_collection(db: sqlite_utils.Database, collection_id: int) -> dict[str, Any]:
    row = fetch_one(db, "SELECT * FROM collections WHERE id = ?", [collection_id])
    if row is None:
        raise not_found("Collection")
    return row


def create_collection(db: sqlite_utils.Database, data: CollectionInput) -> int:
    for course_id in data.courseIds:
        if fetch_one(db, "SELECT id FROM courses WHERE id = ? AND deleted IS NULL", [course_id]) is None:
            raise ApiError(422, f"courseIds: course {course_id} does not exist")
    if (
        data.themeId is not None
        and fetch_one(db, "SELECT id FROM themes WHERE id = ?", [data.themeId]) is None
    ):
        raise ApiError(422, f"themeId: theme {data.themeId} does not exist")
    ensure_identity(db, data.identifier, data.clientIdentifier)
    now = now_iso()
    cursor = db.execute(
        """INSERT INTO collections (key, title, description, identifier, client_identifier, theme_id, course_ids,
           created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [
            new_course_key(),
            data.title,
            data.description,
            data.identifier,
            data.clientIdentifier,
            data.themeId,
            json.dumps(data.courseIds),
            now,
            now,
        ],
    )
    return last_id(cursor)


class CollectionsController(Controller):
    tags = ["Collections"]

    @get("/collections", summary="List collections", sync_to_thread=False)
    def list_collections(
        self, db: Database, deleted: bool = False, page: int = 0, length: int = 100
    ) -> list[dict[str, Any]]:
        limit, offset = page_window(page, length)
        where = "deleted IS NOT NULL" if deleted else "deleted IS NULL"
        rows = fetch_all(
            db.read(),
            f"SELECT * FROM collections WHERE {where} ORDER BY id LIMIT ? OFFSET ?",
            [limit, offset],
        )
        return [collection_to_wire(r) for r in rows]

    @get("/collections/{collection_id:int}", summary="Get one collection", sync_to_thread=False)
    def get_collection(
        self, request: Request[Any, Any, Any], db: Database, collection_id: int
    ) -> dict[str, Any]:
        set_target(request, f"collection:{collection_id}")
        return collection_to_wire(get_collection(db.read(), collection_id))

    @post("/collection", summary="Create a collection", status_code=200)
    async def create(self, db: Database, data: CollectionInput) -> dict[str, Any]:
        def job(w: sqlite_utils.Database) -> dict[str, Any]:
            return collection_to_wire(get_collection(w, create_collection(w, data)))

        return await db.awrite(job)

    @delete("/collection/{collection_id:int}", summary="Soft-delete a collection", status_code=200)
    async def delete(
        self, request: Request[Any, Any, Any], db: Database, collection_id: int
    ) -> dict[str, Any]:
        set_target(request, f"collection:{collection_id}")

        def job(w: sqlite_utils.Database) -> dict[str, Any]:
            get_collection(w, collection_id)
            w.execute(
                "UPDATE collections SET deleted = coalesce(deleted, ?) WHERE id = ?",
                [now_iso(), collection_id],
            )
            return collection_to_wire(get_collection(w, collection_id))

        return await db.awrite(job)

    @post("/collection/{collection_id:int}/restore", summary="Restore a collection", status_code=200)
    async def restore(
        self, request: Request[Any, Any, Any], db: Database, collection_id: int
    ) -> dict[str, Any]:
        set_target(request, f"collection:{collection_id}")

        def job(w: sqlite_utils.Database) -> dict[str, Any]:
            get_collection(w, collection_id)
            w.execute(
                "UPDATE collections SET deleted = NULL, updated = ? WHERE id = ?", [now_iso(), collection_id]
            )
            return collection_to_wire(get_collection(w, collection_id))

        return await db.awrite(job)
