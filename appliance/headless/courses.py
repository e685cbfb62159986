"""Courses: list and get (coassemble-api.md §2.1)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.params import Parameter

from appliance.courses.model import course_to_wire
from appliance.errors import ApiError, not_found
from appliance.headless.deps import set_target
from appliance.storage.database import Database

MAX_LENGTH = 100


def page_window(page: int, length: int) -> tuple[int, int]:
    """The cloud's pagination: 0-based pages, length defaults to 100 and is capped at 100."""
    if page < 0:
        raise ApiError(422, "page must be 0 or greater")
    if length < 0:
        raise ApiError(422, "length must be between 0 and 100")
    length = min(length, MAX_LENGTH)
    return length, page * length


def _rows(db: Database, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    cursor = db.read().execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def load_theme(db: Database, theme_id: int | None) -> dict[str, Any] | None:
    if theme_id is None:
        return None
    rows = _rows(db, "SELECT preset, font, logo, colours FROM themes WHERE id = ?", [theme_id])
    if not rows:
        return None
    r = rows[0]
    return {
        "preset": r["preset"],
        "font": r["font"],
        "logo": json.loads(r["logo"]),
        "colours": json.loads(r["colours"]),
    }


class CoursesController(Controller):
    tags = ["Courses"]

    @get("/courses", summary="List courses", sync_to_thread=False)
    def list_courses(
        self,
        db: Database,
        identifier: str | None = None,
        client_identifier: Annotated[str | None, Parameter(query="clientIdentifier")] = None,
        title: str | None = None,
        deleted: bool = False,
        page: int = 0,
        length: int = 100,
    ) -> list[dict[str, Any]]:
        limit, offset = page_window(page, length)
        where = ["deleted IS NOT NULL" if deleted else "deleted IS NULL"]
        params: list[Any] = []
        if identifier is not None:
            where.append("identifier = ?")
            params.append(identifier)
        if client_identifier is not None:
            where.append("client_identifier = ?")
            params.append(client_identifier)
        if title:
            where.append("instr(lower(title), lower(?)) > 0")
            params.append(title)
        rows = _rows(
            db,
            f"SELECT * FROM courses WHERE {' AND '.join(where)} ORDER BY id LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return [course_to_wire(r, load_theme(db, r["theme_id"])) for r in rows]

    @get("/courses/{course_id:int}", summary="Get one course", sync_to_thread=False)
    def get_course(self, request: Request[Any, Any, Any], db: Database, course_id: int) -> dict[str, Any]:
        set_target(request, f"course:{course_id}")
        rows = _rows(db, "SELECT * FROM courses WHERE id = ?", [course_id])
        if not rows:
            raise not_found("Course")
        return course_to_wire(rows[0], load_theme(db, rows[0]["theme_id"]))
