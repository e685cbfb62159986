"""The draft routes: load, save (optimistic concurrency), preview, publish, revert."""

from __future__ import annotations

from typing import Any

import sqlite_utils
from litestar import Controller, Request, Response, get, post, put

from appliance.embeds.builder import service
from appliance.embeds.builder.access import (
    PATH,
    answer,
    builder_session,
    capabilities,
    owned_row,
    require,
    target,
)
from appliance.embeds.builder.bodies import GradeBody, PublishBody, SaveBody, body_of
from appliance.errors import ApiError


def _if_match(request: Request[Any, Any, Any]) -> str:
    return (request.headers.get("if-match") or "").strip().strip('"')


class DraftApi(Controller):
    path = PATH
    include_in_schema = False

    @get("/", sync_to_thread=False)
    def load(self, request: Request[Any, Any, Any]) -> Response[Any]:
        session = builder_session(request)
        course_id = target(request, session)
        reader = session.db.read()
        state = service.draft_state(reader, owned_row(reader, session, course_id))
        state["capabilities"] = capabilities(request, session)
        return answer(state)

    @put("/", status_code=200)
    async def save(self, request: Request[Any, Any, Any]) -> Response[Any]:
        session = builder_session(request)
        course_id = target(request, session)
        body = await body_of(request, SaveBody)
        expected = _if_match(request) or body.revision
        if not expected:
            raise ApiError(428, SaveBody.refusals["revision"])
        if body.content is None:
            raise ApiError(422, SaveBody.refusals["content"])
        clean = service.clean_content(body.content)

        def job(w: sqlite_utils.Database) -> dict[str, Any]:
            row = owned_row(w, session, course_id)
            return service.save(w, row, expected, clean, body.title, body.description, body.themeId)

        return answer(await session.db.awrite(job))

    @get("/preview", sync_to_thread=False)
    def preview(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        """The saved draft as the player gets a published course, in the session's theme."""
        session = builder_session(request)
        course_id = target(request, session)
        reader = session.db.read()
        theme_id = session.claims.get("themeId")
        row = owned_row(reader, session, course_id)
        return service.preview(reader, row, theme_id if isinstance(theme_id, int) else None)

    @post("/preview/grade", status_code=200)
    async def preview_grade(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        """Grade a preview attempt like the player's server would (nothing is recorded)."""
        session = builder_session(request)
        course_id = target(request, session)
        body = await body_of(request, GradeBody)
        return service.grade(owned_row(session.db.read(), session, course_id), body.screenId, body.answers)

    @post("/publish", status_code=200)
    async def publish(self, request: Request[Any, Any, Any]) -> Response[Any]:
        session = builder_session(request)
        course_id = target(request, session)
        require(request, session, "publish", "Publishing is not enabled for this builder")
        body = await body_of(request, PublishBody)
        expected = _if_match(request) or body.revision
        return answer(await session.db.awrite(
            lambda w: service.publish(w, owned_row(w, session, course_id), expected)
        ))

    @post("/revert", status_code=200)
    async def revert(self, request: Request[Any, Any, Any]) -> Response[Any]:
        session = builder_session(request)
        course_id = target(request, session)
        require(request, session, "publish", "Publishing is not enabled for this builder")
        return answer(await session.db.awrite(lambda w: service.revert(w, owned_row(w, session, course_id))))
