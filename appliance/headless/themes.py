"""Themes: create, list, get, update, delete. A theme is applied to courses through `themeId`."""

from __future__ import annotations

import json
from typing import Annotated, Any

import msgspec
import sqlite_utils
from litestar import Controller, Request, delete, get, post, put

from appliance.errors import not_found
from appliance.headless.common import page_window
from appliance.headless.deps import set_target
from appliance.security.audit import now_iso
from appliance.storage.database import Database, fetch_all, fetch_one, last_id

Hex = Annotated[str, msgspec.Meta(pattern=r"^#[0-9a-fA-F]{3,8}$")]
ShortText = Annotated[str, msgspec.Meta(max_length=200)]


class Palette(msgspec.Struct):
    primary: Hex | None = None
    headings: Hex | None = None
    background: Hex | None = None
    pattern: ShortText | None = None


class Colours(msgspec.Struct):
    standard: Palette = msgspec.field(default_factory=Palette)
    cover: Palette = msgspec.field(default_factory=Palette)


class ThemeInput(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    preset: ShortText | None = None
    font: ShortText | None = None
    logo: Annotated[list[ShortText], msgspec.Meta(max_length=10)] = msgspec.field(default_factory=list)
    colours: Colours = msgspec.field(default_factory=Colours)


def theme_to_wire(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "preset": row["preset"],
        "font": row["font"],
        "logo": json.loads(row["logo"]),
        "colours": json.loads(row["colours"]),
        "created": row["created"],
        "updated": row["updated"],
    }


def _get(db: sqlite_utils.Database, theme_id: int) -> dict[str, Any]:
    row = fetch_one(db, "SELECT * FROM themes WHERE id = ?", [theme_id])
    if row is None:
        raise not_found("Theme")
    return theme_to_wire(row)


def _values(data: ThemeInput) -> list[Any]:
    return [
        data.name,
        data.preset,
        data.font,
        json.dumps(data.logo),
        json.dumps(msgspec.to_builtins(data.colours)),
    ]


class ThemesController(Controller):
    tags = ["Themes"]

    @get("/themes", summary="List themes", sync_to_thread=False)
    def list_themes(self, db: Database, page: int = 0, length: int = 100) -> list[dict[str, Any]]:
        limit, offset = page_window(page, length)
        rows = fetch_all(db.read(), "SELECT * FROM themes ORDER BY id LIMIT ? OFFSET ?", [limit, offset])
        return [theme_to_wire(r) for r in rows]

    @get("/themes/{theme_id:int}", summary="Get one theme", sync_to_thread=False)
    def get_theme(self, request: Request[Any, Any, Any], db: Database, theme_id: int) -> dict[str, Any]:
        set_target(request, f"theme:{theme_id}")
        return _get(db.read(), theme_id)

    @post("/themes", summary="Create a theme", status_code=200)
    async def create_theme(self, db: Database, data: ThemeInput) -> dict[str, Any]:
        def job(w: sqlite_utils.Database) -> dict[str, Any]:
            now = now_iso()
            cursor = w.execute(
                "INSERT INTO themes (name, preset, font, logo, colours, created, updated) VALUES (?,?,?,?,?,?,?)",
                [*_values(data), now, now],
            )
            return _get(w, last_id(cursor))

        return await db.awrite(job)

    @put("/themes/{theme_id:int}", summary="Update a theme")
    async def update_theme(
        self, request: Request[Any, Any, Any], db: Database, theme_id: int, data: ThemeInput
    ) -> dict[str, Any]:
        set_target(request, f"theme:{theme_id}")

        def job(w: sqlite_utils.Database) -> dict[str, Any]:
            _get(w, theme_id)
            w.execute(
                "UPDATE themes SET name=?, preset=?, font=?, logo=?, colours=?, updated=? WHERE id=?",
                [*_values(data), now_iso(), theme_id],
            )
            return _get(w, theme_id)

        return await db.awrite(job)

    @delete("/themes/{theme_id:int}", summary="Delete a theme", status_code=200)
    async def delete_theme(
        self, request: Request[Any, Any, Any], db: Database, theme_id: int
    ) -> dict[str, Any]:
        set_target(request, f"theme:{theme_id}")

        def job(w: sqlite_utils.Database) -> dict[str, Any]:
            _get(w, theme_id)
            w.execute("DELETE FROM themes WHERE id = ?", [theme_id])
            return {"id": theme_id, "deleted": True}

        return await db.awrite(job)
