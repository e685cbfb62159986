"""The builder's AI tools (`options.ai` not false, the AI service running): a course into this
course, a screen, a quiz, refining selected text, a language variant, and narration.

Generation runs as jobs (202, followed at `jobs/{id}`); refine answers at once.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
from litestar import Controller, Request, Response, get, post

from appliance.ai import narration
from appliance.ai.errors import AIError
from appliance.ai.generation import GENERATED_TYPES, REFINE_OPERATIONS, refine_text
from appliance.ai.http import to_api_error
from appliance.courses.languages import require_known_language
from appliance.embeds.builder import service, tasks
from appliance.embeds.builder.access import PATH, builder_session, own_course, owned_row, require, target
from appliance.embeds.builder.bodies import (
    CourseBody,
    NarrateBody,
    QuizBody,
    RefineBody,
    ScreenBody,
    TranslateBody,
    body_of,
)
from appliance.embeds.builder.jobs import submit
from appliance.errors import ApiError
from appliance.server.context import runtime_of
from appliance.server.sse import ai_of

AI_OFF = "AI is not enabled for this builder"


class AiApi(Controller):
    path = PATH
    include_in_schema = False

    @post("/ai/course", status_code=202)
    async def ai_course(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        """Generate into this course: its title and description while untitled, screens appended
        (`mode` "append", titles kept unique) or replacing the draft's screens (`mode` "replace")."""
        session = builder_session(request)
        course_id = target(request, session)
        require(request, session, "ai", AI_OFF)
        owned_row(session.db.read(), session, course_id)
        body = await body_of(request, CourseBody)
        params = {"courseId": course_id, "prompt": body.prompt.strip(), "screenCount": body.screenCount,
                  "audience": body.audience, "familiarity": body.familiarity, "tone": body.tone,
                  "mode": body.mode}
        return await submit(request, session, tasks.KIND, params)

    @post("/ai/screen", status_code=202)
    async def ai_screen(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        session = builder_session(request)
        course_id = target(request, session)
        require(request, session, "ai", AI_OFF)
        row = owned_row(session.db.read(), session, course_id)
        body = await body_of(request, ScreenBody)
        if body.type not in GENERATED_TYPES:
            raise ApiError(422, ScreenBody.refusals["type"])
        params = {"courseId": course_id, "type": body.type,
                  **service.generation_source(row, body.prompt, body.fromCourse)}
        if body.title and body.title.strip():
            params["title"] = body.title.strip()[:200]
        return await submit(request, session, "generate_screen", params)

    @post("/ai/quiz", status_code=202)
    async def ai_quiz(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        session = builder_session(request)
        course_id = target(request, session)
        require(request, session, "ai", AI_OFF)
        row = owned_row(session.db.read(), session, course_id)
        body = await body_of(request, QuizBody)
        params = {"courseId": course_id, "questionCount": body.questionCount,
                  **service.generation_source(row, body.prompt, body.fromCourse)}
        return await submit(request, session, "generate_quiz", params)

    @post("/ai/refine", status_code=200)
    async def ai_refine(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        session = builder_session(request)
        owned_row(session.db.read(), session, target(request, session))
        require(request, session, "ai", AI_OFF)
        body = await body_of(request, RefineBody)
        if body.operation not in REFINE_OPERATIONS:
            raise ApiError(422, RefineBody.refusals["operation"])
        ai = ai_of(request)
        operation, tone = body.operation, (body.tone or "friendly")[:60]
        try:
            refined = await anyio.to_thread.run_sync(
                lambda: refine_text(ai.engine, body.text, operation, tone, retries=ai.quality_retries)
            )
        except AIError as exc:  # the engine's refusals; anything else is a bug (500, logged)
            raise to_api_error(exc) from None
        return {"text": refined}

    @post("/ai/translate", status_code=202)
    async def ai_translate(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        """A language variant of the session's own course (a draft the author reviews)."""
        session = builder_session(request)
        course_id = own_course(request, session)
        require(request, session, "translations", "Translations are not enabled for this builder")
        row = owned_row(session.db.read(), session, course_id)
        body = await body_of(request, TranslateBody)
        require_known_language(body.language)
        if body.language == row["language"]:
            raise ApiError(422, f"The course is already in {body.language}")
        return await submit(request, session, "translate", {"courseId": course_id, "language": body.language})

    @post("/ai/narrate", status_code=202)
    async def ai_narrate(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        """Narrate this course's screens (`{screenIds?, force?}`) with the on-box voice."""
        session = builder_session(request)
        course_id = target(request, session)
        require(request, session, "narrations", "Narration is not enabled for this builder")
        row = owned_row(session.db.read(), session, course_id)
        body = await body_of(request, NarrateBody)
        settings = runtime_of(request).settings.ai
        await anyio.to_thread.run_sync(lambda: narration.require_installed(settings))
        params = {"courseId": course_id, "screenIds": body.screenIds, "force": body.force,
                  "clientIdentifier": row["client_identifier"]}
        return await submit(request, session, narration.KIND, params)

    @get("/narration/{screen_id:int}")
    async def narration_clip(self, request: Request[Any, Any, Any], screen_id: int) -> Response[bytes]:
        """A draft screen's narration (WAV), for the builder's preview."""
        session = builder_session(request)
        course_id = target(request, session)
        row = owned_row(session.db.read(), session, course_id)
        runtime = runtime_of(request)
        content = json.loads(row["draft"])
        data = await anyio.to_thread.run_sync(
            lambda: narration.screen_clip(runtime, session.workspace_id, session.environment, content, screen_id)
        )
        return Response(data, media_type="audio/wav", headers=narration.AUDIO_HEADERS)
