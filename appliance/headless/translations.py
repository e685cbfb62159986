"""Translations: language variants of a course, made by the on-box model.

A variant is a course row with `translation_of` set to its source; the author reviews and publishes
it like any draft. Needs the `api_advanced` and `translations` entitlements.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import msgspec
import sqlite_utils
from litestar import Controller, Request, delete, get, post

from appliance.courses import service as courses
from appliance.courses.languages import require_known_language
from appliance.errors import ApiError, not_found
from appliance.headless.deps import require_entitlement, set_target
from appliance.headless.generate import run_job
from appliance.security.audit import now_iso
from appliance.storage.database import Database, fetch_all, fetch_one


class TranslateInput(msgspec.Struct):
    language: Annotated[str, msgspec.Meta(max_length=35)]


def _gate(request: Request[Any, Any, Any], course_id: int) -> None:
    set_target(request, f"course:{course_id}")
    require_entitlement(request, "api_advanced")
    require_entitlement(request, "translations")


def _language(value: str) -> str:
    return require_known_language(value)


def variants(db: sqlite_utils.Database, course_id: int) -> list[dict[str, Any]]:
    source = courses.get_row(db, course_id)
    if source["translation_of"] is not None:
        raise not_found("Course")
    source_screens = {s["id"] for s in json.loads(source["draft"])["screens"]}
    rows = [
        source,
        *fetch_all(
            db, "SELECT * FROM courses WHERE translation_of = ? AND deleted IS NULL ORDER BY id", [course_id]
        ),
    ]
    out = []
    for row in rows:
        screens = {s["id"] for s in json.loads(row["draft"])["screens"]}
        out.append(
            {
                "id": row["id"],
                "language": row["language"],
                "default": bool(row["default_language"]),
                "missingScreens": len(source_screens - screens),
                "published": row["published"],
            }
        )
    return out


def _variant(db: sqlite_utils.Database, course_id: int, language: str) -> dict[str, Any]:
    row = fetch_one(
        db,
        "SELECT * FROM courses WHERE translation_of = ? AND language = ? AND deleted IS NULL",
        [course_id, language],
    )
    if row is None:
        raise not_found("Translation")
    return row


class TranslationsController(Controller):
    tags = ["Translations"]

    @get("/translations/{course_id:int}", summary="A course's language variants", sync_to_thread=False)
    def list_translations(
        self, request: Request[Any, Any, Any], db: Database, course_id: int
    ) -> list[dict[str, Any]]:
        _gate(request, course_id)
        return variants(db.read(), course_id)

    @post(
        "/translation/translate/{course_id:int}",
        summary="Translate a course into a new language",
        status_code=200,
    )
    async def translate(
        self, request: Request[Any, Any, Any], db: Database, course_id: int, data: TranslateInput
    ) -> Any:
        _gate(request, course_id)
        language = _language(data.language)
        source = courses.get_row(db.read(), course_id)
        if source["translation_of"] is not None:
            raise ApiError(422, "Translate the source course, not one of its translations")
        if language == source["language"]:
            raise ApiError(422, f"The course is already in {language}")
        return await self._run(request, db, course_id, language)

    @post(
        "/translation/sync/{course_id:int}/{language:str}",
        summary="Re-translate from the source (overwrites edits)",
        status_code=200,
    )
    async def sync(self, request: Request[Any, Any, Any], db: Database, course_id: int, language: str) -> Any:
        _gate(request, course_id)
        _variant(db.read(), course_id, _language(language))
        return await self._run(request, db, course_id, language)

    async def _run(self, request: Request[Any, Any, Any], db: Database, course_id: int, language: str) -> Any:
        outcome = await run_job(request, "translate", {"courseId": course_id, "language": language})
        if not isinstance(outcome, dict):
            return outcome
        return next(v for v in variants(db.read(), course_id) if v["language"] == language)

    @post(
        "/translation/default/{course_id:int}/{language:str}",
        summary="Set the language learners see first",
        status_code=200,
    )
    async def set_default(
        self, request: Request[Any, Any, Any], db: Database, course_id: int, language: str
    ) -> list[dict[str, Any]]:
        _gate(request, course_id)

        def job(w: sqlite_utils.Database) -> list[dict[str, Any]]:
            source = courses.get_row(w, course_id)
            target = (
                source["id"] if source["language"] == language else _variant(w, course_id, language)["id"]
            )
            w.execute(
                "UPDATE courses SET default_language = (id = ?), updated = ? WHERE id = ? OR translation_of = ?",
                [target, now_iso(), course_id, course_id],
            )
            return variants(w, course_id)

        return await db.awrite(job)

    @delete(
        "/translation/{course_id:int}/{language:str}", summary="Remove a language variant", status_code=200
    )
    async def remove(
        self, request: Request[Any, Any, Any], db: Database, course_id: int, language: str
    ) -> list[dict[str, Any]]:
        _gate(request, course_id)

        def job(w: sqlite_utils.Database) -> list[dict[str, Any]]:
            variant = _variant(w, course_id, language)
            w.execute("DELETE FROM courses WHERE id = ?", [variant["id"]])
            if variant["default_language"]:
                w.execute("UPDATE courses SET default_language = 1 WHERE id = ?", [course_id])
            return variants(w, course_id)

        return await db.awrite(job)
