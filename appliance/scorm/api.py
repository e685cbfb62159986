"""What a dynamic SCORM package calls from the learner's browser (on the LMS's origin, so every
answer carries CORS headers; there are no cookies, the package token travels as a Bearer header).

* `GET /scorm/api/course`: the live published course in the player's learner shape (answers withheld).
* `GET /scorm/api/narration/{screenId}`: a narrated screen's clip (WAV) of that published course.
* `POST /scorm/api/track` `{event, learner: {id, name}, ...}`: the player's events, graded and
  recorded like the embed's (`appliance.embeds.player.track`) for the learner `scorm:<LMS learner
  id>`, with the tracking's `scorm` flag set.

The token is `scorm-package+jwt` (audience `scorm-package`): it names one course and `action: view`,
and no other route accepts it (nor does this one accept embed tokens). Every refusal is one 401.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
from litestar import Request, Response, get, post, route

from appliance import logs
from appliance.ai import narration
from appliance.embeds import player, sessions
from appliance.embeds.tokens import SCORM_TYP, TokenInvalid
from appliance.errors import ApiError, DomainError, as_api_error, error_body
from appliance.learners.trackings import record_progress
from appliance.server.context import context_of, runtime_of
from appliance.storage.database import Database, StorageError
from appliance.workspaces.service import Principal

REFUSED = "This SCORM package's token is invalid or has expired; ask for a new export"
CORS = {
    "access-control-allow-origin": "*",
    "access-control-allow-methods": "GET, POST, OPTIONS",
    "access-control-allow-headers": "Authorization, Content-Type",
    "access-control-max-age": "600",
}
MAX_SECONDS = 3600  # per call: there is no server-side session clock to cap against


def _answer(body: Any, status: int = 200) -> Response[Any]:
    return Response(body, status_code=status, headers=CORS, media_type="application/json")


def _error(exc: ApiError | DomainError) -> Response[Any]:
    """The error body with the CORS headers the launcher (on the LMS's origin) needs to read it."""
    answer = as_api_error(exc)
    return _answer(error_body(answer.status_code, answer.detail), answer.status_code)


def _claims(request: Request[Any, Any, Any]) -> tuple[dict[str, Any], Database]:
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.startswith("Bearer ") else ""
    runtime = runtime_of(request)
    try:
        claims = sessions.signer_of(runtime).verify(token, SCORM_TYP)
        if claims.get("action") != "view" or not isinstance(claims.get("course"), int):
            raise TokenInvalid("not a view token for one course")
        db = runtime.environment(int(claims["workspace"]), str(claims["environment"]))
    except (TokenInvalid, StorageError) as exc:
        logs.event("scorm package token refused", level=20, reason=str(exc))
        raise ApiError(401, REFUSED) from None
    ctx = context_of(request)
    ctx.principal = Principal(
        workspace_id=int(claims["workspace"]), environment=str(claims["environment"]), key_id="scorm-package"
    )
    ctx.actor = "scorm-package"
    ctx.target = f"course:{claims['course']}"
    return claims, db


@route(
    ["/scorm/api/course", "/scorm/api/track", "/scorm/api/narration/{screen_id:int}"],
    http_method=["OPTIONS"],
    include_in_schema=False,
)
async def preflight() -> Response[None]:
    return Response(None, status_code=204, headers=CORS)


@get("/scorm/api/course", sync_to_thread=False, include_in_schema=False)
def course(request: Request[Any, Any, Any]) -> Response[Any]:
    try:
        claims, db = _claims(request)
        reader = db.read()
        data = player.course_for_player(reader, int(claims["course"]), None)
    except (ApiError, DomainError) as exc:
        return _error(exc)
    return _answer({"course": data, "environment": claims["environment"], "expires": claims["exp"]})


@get("/scorm/api/narration/{screen_id:int}", include_in_schema=False)
async def clip(request: Request[Any, Any, Any], screen_id: int) -> Response[Any]:
    """A screen's narration (WAV) of the token's published course; 404 when the screen has none.
    Fetched with the Bearer header (an <audio> element cannot send it) and played from a blob: URL."""
    try:
        claims, db = _claims(request)
        row = player.played_row(db.read(), int(claims["course"]), None)  # 404 deleted, 409 unpublished
        content = player.published_content(row)
        runtime = runtime_of(request)
        workspace, environment = int(claims["workspace"]), str(claims["environment"])
        data = await anyio.to_thread.run_sync(
            lambda: narration.screen_clip(runtime, workspace, environment, content, screen_id)
        )
    except (ApiError, DomainError) as exc:
        return _error(exc)
    # CORP cross-origin: the launcher reads it from the LMS's origin (a CORS fetch)
    headers = {**CORS, **narration.AUDIO_HEADERS, "cross-origin-resource-policy": "cross-origin"}
    return Response(data, status_code=200, headers=headers, media_type="audio/wav")


def _learner(body: dict[str, Any]) -> tuple[str, str | None]:
    given = body.get("learner")
    learner: dict[str, Any] = given if isinstance(given, dict) else {}
    raw_id = str(learner.get("id") or "").strip()[:200]
    name = str(learner.get("name") or "").strip()[:200] or None
    return f"scorm:{raw_id or 'anonymous'}", name


@post("/scorm/api/track", status_code=200, include_in_schema=False)
async def track(request: Request[Any, Any, Any]) -> Response[Any]:
    try:
        claims, db = _claims(request)
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise ApiError(400, "Malformed JSON body") from None
        if not isinstance(body, dict):
            raise ApiError(422, "The body must be a JSON object")
        identifier, name = _learner(body)
        course_id = int(claims["course"])
        event = str(body.get("event", ""))
        try:
            seconds = max(0, min(int(body.get("seconds") or 0), MAX_SECONDS))
        except (TypeError, ValueError):
            seconds = 0

        def job(w: Any) -> dict[str, Any]:
            result = player.track(
                w, course_id, identifier, None, event, body, seconds=seconds, language=None, name=name
            )
            record_progress(w, course_id, identifier, scorm=True)
            return result

        result = await db.awrite(job)
    except (ApiError, DomainError) as exc:
        return _error(exc)
    return _answer(result)


SCORM_HANDLERS: list[Any] = [preflight, course, clip, track]
