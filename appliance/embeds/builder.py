"""The builder's session API (`action: edit` course embeds; docs/embeds.md "Builder").

Every route takes the Bearer session JWT of an *edit* session (a view session gets 403) and works on
the session's own course, or on one of its language variants (`?course=<variant id>`). A course
owned by another client (its `clientIdentifier` differs from the token's) is refused with 403.

* `GET  /embed/api/builder`: the draft, its etag (`revision`), themes, variants, capabilities.
* `PUT  /embed/api/builder`: save the draft with optimistic concurrency (`If-Match` or `revision`);
  a stale save gets 409 and nothing is overwritten. Content goes through `validate_content` (the
  one validator and HTML sanitiser).
* `POST /embed/api/builder/publish` / `revert`: only with `options.publishing: true` and the
  workspace's `api_authoring` entitlement.
* `POST /embed/api/builder/media`: an image, video or audio file (raw body, `Content-Type`) into the
  encrypted object store; served back at `GET /embed/media/<ws>/<env>/<object>.<ext>`.
* `GET  /embed/api/builder/preview`: the draft shaped for the player (preview as a learner).
* AI (`options.ai` not false, the AI service running): `POST ai/course` (fills this course; each
  screen is streamed as it is generated), `ai/screen`, `ai/quiz`, `ai/refine`, `ai/translate`
  (`options.translations: true` and the `api_advanced` + `translations` entitlements); jobs are
  followed at `GET jobs/{id}` and `GET jobs/{id}/events` (server-sent events, read with fetch).
* Narration (`options.narrations: true`, the `narrations` entitlement): `POST ai/narrate` (job
  `narrate_course`), `GET narration/{screen id}` (a draft screen's clip, for the preview).
* Documents (`appliance.documents`): `POST documents` (raw body, `X-Filename`), `POST
  documents/course` (document or presentation → this course; unsupported screens flagged).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import anyio
import sqlite_utils
from litestar import Controller, Request, Response, get, post, put
from litestar.response import ServerSentEvent

from appliance.ai import narration
from appliance.ai.course_writer import CourseBrief, draft_course
from appliance.ai.generation import GENERATED_TYPES, MAX_SCREENS, REFINE_OPERATIONS, refine_text
from appliance.ai.http import to_api_error
from appliance.ai.jobs import FINAL, HANDLERS, AIService, JobContext, handler
from appliance.courses import service as courses
from appliance.courses.model import DEFAULT_FINISH, DEFAULT_START, SCREEN_TYPES
from appliance.courses.validate import validate_content
from appliance.embeds import player
from appliance.embeds.routes import _json, _runtime, _session
from appliance.embeds.sessions import EmbedSession
from appliance.errors import ApiError
from appliance.headless.deps import context_of
from appliance.security.audit import now_iso
from appliance.server import public
from appliance.storage.database import fetch_all, fetch_one
from appliance.storage.objects import ObjectError, ObjectStore
from appliance.workspaces import service as workspaces

UNTITLED = "Untitled course"
CONFLICT = (
    "Someone else saved this course while you were editing it. Your changes were not saved: "
    "reload to see their version (copy anything you want to keep first)."
)
MEDIA_MAX_BYTES = 8 * 1024 * 1024
DOCUMENT_MAX_BYTES = 10 * 1024 * 1024
LANGUAGE = re.compile(r"^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})*$")
# accepted uploads: extension, MIME type, and a check of the file's first bytes (no SVG: it can script)
MEDIA_TYPES: dict[str, tuple[str, str]] = {
    "png": ("image/png", "image"),
    "jpg": ("image/jpeg", "image"),
    "gif": ("image/gif", "image"),
    "webp": ("image/webp", "image"),
    "mp4": ("video/mp4", "video"),
    "webm": ("video/webm", "video"),
    "mp3": ("audio/mpeg", "audio"),
    "ogg": ("audio/ogg", "audio"),
    "wav": ("audio/wav", "audio"),
}
MEDIA_NAME = re.compile(r"^([0-9a-f]{32})\.([a-z0-9]{2,4})$")
DOCUMENT_KINDS = {"document": "document_to_course", "presentation": "presentation_to_course"}


def sniff_media(data: bytes) -> str | None:
    """The extension of an accepted media file, from its content (never from its name)."""
    head = data[:16]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[4:8] == b"ftyp":
        return "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    return None


def etag_of(row: dict[str, Any]) -> str:
    """The draft's revision tag: changes whenever what an author edits changes."""
    material = json.dumps(
        [row["draft"], row["title"], row["description"], row["theme_id"]], ensure_ascii=False
    )
    return hashlib.sha256(material.encode()).hexdigest()[:20]


# -- access --------------------------------------------------------------------------------------
def builder_session(request: Request[Any, Any, Any]) -> EmbedSession:
    return _session(request, ("course",), "edit")


def _owned_row(db: sqlite_utils.Database, session: EmbedSession, course_id: int) -> dict[str, Any]:
    row = fetch_one(db, "SELECT * FROM courses WHERE id = ?", [course_id])
    if row is None or row["deleted"] is not None:
        raise ApiError(404, "Course not found")
    own = int(session.claims["course"])
    if row["id"] != own and row["translation_of"] != own:
        raise ApiError(403, "This embed session is for another course")
    client = session.claims.get("clientIdentifier")
    if row["client_identifier"] is not None and row["client_identifier"] != client:
        raise ApiError(403, "This course belongs to another client; ask for a link to your own course")
    return row


def _target(request: Request[Any, Any, Any], session: EmbedSession) -> int:
    raw = request.query_params.get("course")
    course_id = int(raw) if raw and raw.isdigit() else int(session.claims["course"])
    context_of(request).target = f"course:{course_id}"
    return course_id


def _option(session: EmbedSession, name: str) -> Any:
    return session.options.get(name)


def _entitled(request: Request[Any, Any, Any], session: EmbedSession, name: str) -> bool:
    workspace = workspaces.get_workspace(_runtime(request).control, session.workspace_id)
    return bool(workspace["entitlements"].get(name, False))


def capabilities(request: Request[Any, Any, Any], session: EmbedSession) -> dict[str, bool]:
    ai_service = getattr(request.app.state, "ai", None)
    ai = ai_service is not None and _option(session, "ai") is not False
    return {
        "publish": _option(session, "publishing") is True and _entitled(request, session, "api_authoring"),
        "ai": ai,
        "translations": ai
        and _option(session, "translations") is True
        and _entitled(request, session, "api_advanced")
        and _entitled(request, session, "translations"),
        "documents": ai and _documents_module() is not None,
        "narrations": ai_service is not None
        and _option(session, "narrations") is True
        and _entitled(request, session, "narrations"),
    }


def _require(request: Request[Any, Any, Any], session: EmbedSession, capability: str, message: str) -> None:
    if not capabilities(request, session)[capability]:
        raise ApiError(403, message)


def _documents_module() -> Any | None:
    """`appliance.documents.service` (its job kinds registered), or None on a build without it."""
    try:
        importlib.import_module("appliance.documents.tasks")
        module = importlib.import_module("appliance.documents.service")
    except ImportError:
        return None
    return module if hasattr(module, "ingest") else None


# -- shapes --------------------------------------------------------------------------------------
def draft_state(db: sqlite_utils.Database, row: dict[str, Any]) -> dict[str, Any]:
    content = json.loads(row["draft"])
    source_id = row["translation_of"] or row["id"]
    variants = [
        {"id": r["id"], "language": r["language"], "published": r["published"], "source": r["translation_of"] is None}
        for r in fetch_all(
            db,
            "SELECT id, language, published, translation_of FROM courses "
            "WHERE (id = ? OR translation_of = ?) AND deleted IS NULL ORDER BY id",
            [source_id, source_id],
        )
    ]
    themes = [
        {"id": t["id"], "name": t["name"], "colours": json.loads(t["colours"]), "font": t["font"]}
        for t in fetch_all(db, "SELECT id, name, colours, font FROM themes ORDER BY id")
    ]
    return {
        "course": {
            "id": row["id"],
            "title": row["title"],
            "description": row["description"],
            "language": row["language"],
            "themeId": row["theme_id"],
            "translationOf": row["translation_of"],
            "published": row["published"],
            "publishedRevision": row["revision"],
            "hasPublished": row["published_content"] is not None,
            "fresh": row["created"] == row["updated"],
            "start": {**DEFAULT_START, **(content.get("start") or {})},
            "finish": {**DEFAULT_FINISH, **(content.get("finish") or {})},
            "screens": content.get("screens", []),
        },
        "revision": etag_of(row),
        "variants": variants,
        "themes": themes,
        "screenTypes": list(SCREEN_TYPES),
        "generatedTypes": list(GENERATED_TYPES),
    }


def _answer(state: dict[str, Any]) -> Response[Any]:
    return Response(state, headers={"etag": f'"{state["revision"]}"'})


def _media_url(request: Request[Any, Any, Any], session: EmbedSession, object_id: str, ext: str) -> str:
    base = public.base_url(request)
    return f"{base}/embed/media/{session.workspace_id}/{session.environment}/{object_id}.{ext}"


# -- AI job kinds of the builder ---------------------------------------------------------------------
def _append_screens(content: dict[str, Any], screens: list[dict[str, Any]]) -> dict[str, Any]:
    next_id = max((int(s.get("id") or 0) for s in content.get("screens", [])), default=0) + 1
    for offset, screen in enumerate(screens):
        screen["id"] = next_id + offset
    return validate_content({**content, "screens": [*content.get("screens", []), *screens]})


@handler("builder_generate_course")
def run_builder_generate_course(ctx: JobContext) -> dict[str, Any]:
    """A course generated into the builder's own course: its title and description when it has
    none yet, and the screens appended to the draft (each reported as soon as it exists)."""
    p = ctx.params
    brief = CourseBrief(
        prompt=p["prompt"],
        audience=p.get("audience") or "employees",
        familiarity=p.get("familiarity") or "beginner",
        tone=p.get("tone") or "professional",
        screen_count=int(p.get("screenCount") or 5),
        retries=ctx.retries,
    )
    draft = draft_course(ctx.engine, brief, ctx.progress, cancel=ctx.cancel)
    title, description, generated = draft.title, draft.description, draft.content
    course_id = int(p["courseId"])

    def save(w: sqlite_utils.Database) -> None:
        row = courses.get_row(w, course_id)
        content = json.loads(row["draft"])
        merged = _append_screens(content, generated["screens"])
        if generated.get("objectives"):
            merged["objectives"] = generated["objectives"]
        fresh_title = row["title"] in ("", UNTITLED)
        w.execute(
            "UPDATE courses SET draft = ?, title = ?, description = ?, updated = ? WHERE id = ?",
            [
                json.dumps(merged),
                title if fresh_title else row["title"],
                description if fresh_title and not row["description"] else row["description"],
                now_iso(),
                course_id,
            ],
        )

    ctx.db.write(save)
    return {"courseId": course_id, "screens": len(generated["screens"]), "flags": [f.to_wire() for f in draft.flags]}


# -- the routes ----------------------------------------------------------------------------------
class BuilderApi(Controller):
    path = "/embed/api/builder"
    include_in_schema = False

    @get("/", sync_to_thread=False)
    def load(self, request: Request[Any, Any, Any]) -> Response[Any]:
        session = builder_session(request)
        course_id = _target(request, session)
        reader = session.db.read()
        row = _owned_row(reader, session, course_id)
        state = draft_state(reader, row)
        state["capabilities"] = capabilities(request, session)
        return _answer(state)

    @put("/", status_code=200)
    async def save(self, request: Request[Any, Any, Any]) -> Response[Any]:
        session = builder_session(request)
        course_id = _target(request, session)
        body = await _json(request)
        expected = (request.headers.get("if-match") or "").strip().strip('"') or body.get("revision")
        if not isinstance(expected, str) or not expected:
            raise ApiError(428, "Send the revision you edited (If-Match header or a revision field)")
        content = body.get("content")
        if not isinstance(content, dict):
            raise ApiError(422, "content must be an object with start, finish and screens")
        clean = validate_content(
            {
                "start": content.get("start") if isinstance(content.get("start"), dict) else DEFAULT_START,
                "finish": content.get("finish") if isinstance(content.get("finish"), dict) else DEFAULT_FINISH,
                "screens": content.get("screens", []),
                **({"objectives": content["objectives"]} if isinstance(content.get("objectives"), list) else {}),
            }
        )
        title = body.get("title")
        description = body.get("description")
        theme_id = body.get("themeId")
        if title is not None and (not isinstance(title, str) or not 0 < len(title.strip()) <= 200):
            raise ApiError(422, "title must be text of 1 to 200 characters")
        if description is not None and (not isinstance(description, str) or len(description) > 2000):
            raise ApiError(422, "description must be text of at most 2000 characters")
        if theme_id is not None and not isinstance(theme_id, int):
            raise ApiError(422, "themeId must be a theme id or null")

        def job(w: sqlite_utils.Database) -> dict[str, Any]:
            row = _owned_row(w, session, course_id)
            if etag_of(row) != expected:
                raise ApiError(409, CONFLICT)
            if theme_id is not None and fetch_one(w, "SELECT id FROM themes WHERE id = ?", [theme_id]) is None:
                raise ApiError(404, "Theme not found")
            w.execute(
                "UPDATE courses SET draft = ?, title = ?, description = ?, theme_id = ?, updated = ? WHERE id = ?",
                [
                    json.dumps(clean),
                    title.strip() if isinstance(title, str) else row["title"],
                    description if isinstance(description, str) else row["description"],
                    theme_id if "themeId" in body else row["theme_id"],
                    now_iso(),
                    course_id,
                ],
            )
            return draft_state(w, courses.get_row(w, course_id))

        state = await session.db.awrite(job)
        return _answer(state)

    @get("/preview", sync_to_thread=False)
    def preview(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        """The saved draft as the player gets a published course (answers kept: the author's own)."""
        session = builder_session(request)
        course_id = _target(request, session)
        reader = session.db.read()
        row = _owned_row(reader, session, course_id)
        content = json.loads(row["draft"])
        theme_id = session.claims.get("themeId")
        return {
            "id": row["id"],
            "title": row["title"],
            "description": row["description"],
            "language": row["language"],
            "theme": courses.load_theme(reader, theme_id if isinstance(theme_id, int) else row["theme_id"]),
            "start": content.get("start") or DEFAULT_START,
            "finish": content.get("finish") or DEFAULT_FINISH,
            "screens": [player.learner_screen(s, i) for i, s in enumerate(content.get("screens", []))],
            "grading": {
                str(s.get("id")): s for s in content.get("screens", []) if s.get("type") == "quiz"
            },
        }

    @post("/preview/grade", status_code=200)
    async def preview_grade(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        """Grade a preview attempt like the player's server would (nothing is recorded)."""
        session = builder_session(request)
        course_id = _target(request, session)
        body = await _json(request)
        row = _owned_row(session.db.read(), session, course_id)
        for screen in json.loads(row["draft"]).get("screens", []):
            if str(screen.get("id")) == str(body.get("screenId")) and screen.get("type") == "quiz":
                return player.grade(screen, body.get("answers", {}))
        return {}

    @post("/publish", status_code=200)
    async def publish(self, request: Request[Any, Any, Any]) -> Response[Any]:
        session = builder_session(request)
        course_id = _target(request, session)
        _require(request, session, "publish", "Publishing is not enabled for this builder")
        body = await _json(request)
        expected = (request.headers.get("if-match") or "").strip().strip('"') or body.get("revision")

        def job(w: sqlite_utils.Database) -> dict[str, Any]:
            row = _owned_row(w, session, course_id)
            if expected and etag_of(row) != expected:
                raise ApiError(409, CONFLICT)
            courses.publish(w, course_id)
            return draft_state(w, courses.get_row(w, course_id))

        return _answer(await session.db.awrite(job))

    @post("/revert", status_code=200)
    async def revert(self, request: Request[Any, Any, Any]) -> Response[Any]:
        session = builder_session(request)
        course_id = _target(request, session)
        _require(request, session, "publish", "Publishing is not enabled for this builder")

        def job(w: sqlite_utils.Database) -> dict[str, Any]:
            _owned_row(w, session, course_id)
            courses.revert(w, course_id)
            return draft_state(w, courses.get_row(w, course_id))

        return _answer(await session.db.awrite(job))

    @post("/media", status_code=201)
    async def upload_media(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        session = builder_session(request)
        course_id = _target(request, session)
        row = _owned_row(session.db.read(), session, course_id)
        data = await request.body()
        if not data:
            raise ApiError(422, "The upload is empty")
        if len(data) > MEDIA_MAX_BYTES:
            raise ApiError(413, f"Media files are limited to {MEDIA_MAX_BYTES // (1024 * 1024)} MB")
        ext = sniff_media(data)
        if ext is None:
            raise ApiError(415, "Upload a PNG, JPEG, GIF or WebP image, an MP4 or WebM video, or an MP3, OGG or WAV file")
        store = ObjectStore(_runtime(request))
        subject_kind, subject_id = (
            ("client", row["client_identifier"]) if row["client_identifier"] else ("course", row["id"])
        )
        object_id = await anyio.to_thread.run_sync(
            lambda: store.put(session.workspace_id, session.environment, subject_kind, subject_id, data)
        )
        mime, kind = MEDIA_TYPES[ext]
        return {"url": _media_url(request, session, object_id, ext), "kind": kind, "type": mime, "bytes": len(data)}

    # -- AI ---------------------------------------------------------------------------------------
    @post("/ai/course", status_code=202)
    async def ai_course(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        session = builder_session(request)
        course_id = _target(request, session)
        _require(request, session, "ai", "AI is not enabled for this builder")
        _owned_row(session.db.read(), session, course_id)
        body = await _json(request)
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not 0 < len(prompt.strip()) <= 4000:
            raise ApiError(422, "Describe the course in a prompt of up to 4000 characters")
        count = body.get("screenCount", 5)
        if not isinstance(count, int) or not 1 <= count <= MAX_SCREENS:
            raise ApiError(422, f"screenCount must be a number from 1 to {MAX_SCREENS}")
        params: dict[str, Any] = {"courseId": course_id, "prompt": prompt.strip(), "screenCount": count}
        for name in ("audience", "familiarity", "tone"):
            value = body.get(name)
            if value is not None and (not isinstance(value, str) or len(value) > 200):
                raise ApiError(422, f"{name} must be text of at most 200 characters")
            params[name] = value
        return await self._submit(request, session, "builder_generate_course", params)

    @post("/ai/screen", status_code=202)
    async def ai_screen(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        session = builder_session(request)
        course_id = _target(request, session)
        _require(request, session, "ai", "AI is not enabled for this builder")
        row = _owned_row(session.db.read(), session, course_id)
        body = await _json(request)
        kind = body.get("type", "text")
        if kind not in GENERATED_TYPES:
            raise ApiError(422, f"type must be one of {', '.join(GENERATED_TYPES)}")
        params = {"courseId": course_id, "type": kind, **self._prompt(body, row)}
        if isinstance(body.get("title"), str) and body["title"].strip():
            params["title"] = body["title"].strip()[:200]
        return await self._submit(request, session, "generate_screen", params)

    @post("/ai/quiz", status_code=202)
    async def ai_quiz(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        session = builder_session(request)
        course_id = _target(request, session)
        _require(request, session, "ai", "AI is not enabled for this builder")
        row = _owned_row(session.db.read(), session, course_id)
        body = await _json(request)
        count = body.get("questionCount", 3)
        if not isinstance(count, int) or not 1 <= count <= 10:
            raise ApiError(422, "questionCount must be a number from 1 to 10")
        params = {"courseId": course_id, "questionCount": count, **self._prompt(body, row)}
        return await self._submit(request, session, "generate_quiz", params)

    @staticmethod
    def _prompt(body: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
        """From a prompt, or (`fromCourse`) from the course's own content."""
        prompt = body.get("prompt")
        if prompt is not None and (not isinstance(prompt, str) or len(prompt) > 4000):
            raise ApiError(422, "prompt must be text of at most 4000 characters")
        out: dict[str, Any] = {"prompt": prompt or None}
        if body.get("fromCourse"):
            screens = json.loads(row["draft"]).get("screens", [])
            if not screens:
                raise ApiError(422, "The course has no content yet to generate from")
            out["content"] = "\n".join(
                f"{s.get('title', '')}: {json.dumps(s.get('content', {}), ensure_ascii=False)[:800]}" for s in screens
            )[:20000]
        elif not prompt:
            raise ApiError(422, "Give a prompt, or generate from the course's own content")
        return out

    @post("/ai/refine", status_code=200)
    async def ai_refine(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        session = builder_session(request)
        _owned_row(session.db.read(), session, _target(request, session))
        _require(request, session, "ai", "AI is not enabled for this builder")
        body = await _json(request)
        text, operation = body.get("text"), body.get("operation")
        if not isinstance(text, str) or not 0 < len(text) <= 4000:
            raise ApiError(422, "Select some text (up to 4000 characters) to refine")
        if operation not in REFINE_OPERATIONS:
            raise ApiError(422, f"operation must be one of {', '.join(REFINE_OPERATIONS)}")
        tone = body.get("tone") if isinstance(body.get("tone"), str) else "friendly"
        service = _ai(request)
        try:
            refined = await anyio.to_thread.run_sync(
                lambda: refine_text(service.engine, text, str(operation), str(tone)[:60],
                                    retries=service.quality_retries)
            )
        except Exception as exc:
            raise to_api_error(exc) from None
        return {"text": refined}

    @post("/ai/translate", status_code=202)
    async def ai_translate(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        session = builder_session(request)
        course_id = int(session.claims["course"])
        context_of(request).target = f"course:{course_id}"
        _require(request, session, "translations", "Translations are not enabled for this builder")
        row = _owned_row(session.db.read(), session, course_id)
        body = await _json(request)
        language = body.get("language")
        if not isinstance(language, str) or not LANGUAGE.match(language):
            raise ApiError(422, "language must be a code such as fr or pt-BR")
        if language == row["language"]:
            raise ApiError(422, f"The course is already in {language}")
        return await self._submit(request, session, "translate", {"courseId": course_id, "language": language})

    @post("/ai/narrate", status_code=202)
    async def ai_narrate(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        """Narrate this course's screens (`{screenIds?, force?}`) with the on-box voice."""
        session = builder_session(request)
        course_id = _target(request, session)
        _require(request, session, "narrations", "Narration is not enabled for this builder")
        row = _owned_row(session.db.read(), session, course_id)
        body = await _json(request)
        screen_ids = body.get("screenIds")
        if screen_ids is not None and (
            not isinstance(screen_ids, list) or len(screen_ids) > 200
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in screen_ids)
        ):
            raise ApiError(422, "screenIds must be a list of screen ids")
        settings = _runtime(request).settings.ai
        await anyio.to_thread.run_sync(lambda: narration.require_installed(settings))
        params = {"courseId": course_id, "screenIds": screen_ids, "force": body.get("force") is True,
                  "clientIdentifier": row["client_identifier"]}
        return await self._submit(request, session, narration.KIND, params)

    @get("/narration/{screen_id:int}")
    async def narration_clip(self, request: Request[Any, Any, Any], screen_id: int) -> Response[bytes]:
        """A draft screen's narration (WAV), for the builder's preview."""
        session = builder_session(request)
        course_id = _target(request, session)
        row = _owned_row(session.db.read(), session, course_id)
        runtime = _runtime(request)
        content = json.loads(row["draft"])
        data = await anyio.to_thread.run_sync(
            lambda: narration.screen_clip(runtime, session.workspace_id, session.environment, content, screen_id)
        )
        return Response(data, media_type="audio/wav", headers=narration.AUDIO_HEADERS)

    # -- documents --------------------------------------------------------------------------------
    @post("/documents", status_code=201)
    async def upload_document(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        session = builder_session(request)
        course_id = _target(request, session)
        _owned_row(session.db.read(), session, course_id)
        module = _documents_module()
        if module is None:
            raise ApiError(503, "Document upload is not available on this appliance yet")
        filename = (request.headers.get("x-filename") or "document").strip()[:200]
        data = await request.body()
        if not data:
            raise ApiError(422, "The upload is empty")
        if len(data) > DOCUMENT_MAX_BYTES:
            raise ApiError(413, f"Documents are limited to {DOCUMENT_MAX_BYTES // (1024 * 1024)} MB")
        runtime = _runtime(request)
        identifier = session.claims.get("identifier")
        owner = str(identifier) if identifier else None
        try:
            result = await anyio.to_thread.run_sync(
                lambda: module.ingest(runtime, session.workspace_id, session.environment, filename, data, owner=owner)
            )
        except ApiError:
            raise
        except Exception as exc:  # the documents package reports its own refusals as ApiError
            raise ApiError(422, f"The document could not be read: {type(exc).__name__}") from None
        document = dict(result) if isinstance(result, dict) else {"id": result}
        return {**document, "documentId": document.get("id")}

    @post("/documents/course", status_code=202)
    async def document_course(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        session = builder_session(request)
        course_id = _target(request, session)
        row = _owned_row(session.db.read(), session, course_id)
        _require(request, session, "ai", "AI is not enabled for this builder")
        body = await _json(request)
        kind = DOCUMENT_KINDS.get(str(body.get("kind", "document")))
        if kind is None:
            raise ApiError(422, "kind must be document or presentation")
        module = _documents_module()
        if module is None or kind not in HANDLERS:
            raise ApiError(503, "Document-to-course is not available on this appliance yet")
        document_id = body.get("documentId")
        if not isinstance(document_id, int) or isinstance(document_id, bool):
            raise ApiError(422, "documentId is required (upload the document first)")
        identifier = session.claims.get("identifier")
        # only a document this author uploaded (404 otherwise)
        await anyio.to_thread.run_sync(
            lambda: module.get_document(
                _runtime(request), session.workspace_id, session.environment, document_id,
                str(identifier) if identifier else None,
            )
        )
        params: dict[str, Any] = {
            "documentId": document_id,
            "identifier": row["identifier"],
            "clientIdentifier": row["client_identifier"],
            "intoCourse": course_id,
        }
        for name in ("prompt", "audience", "familiarity", "tone"):
            if isinstance(body.get(name), str) and body[name].strip():
                params[name] = body[name].strip()[:2000]
        if isinstance(body.get("screenCount"), int):
            params["screenCount"] = max(1, min(MAX_SCREENS, body["screenCount"]))
        return await self._submit(request, session, kind, params)

    # -- jobs -------------------------------------------------------------------------------------
    async def _submit(
        self, request: Request[Any, Any, Any], session: EmbedSession, kind: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        service = _ai(request)
        actor = f"embed-session:{session.session_id}"
        job_id, _future = await anyio.to_thread.run_sync(
            lambda: service.submit(session.workspace_id, session.environment, kind, params, actor)
        )  # (AIService.submit returns the id and a future of the final row)
        job = service.get(session.workspace_id, session.environment, job_id)
        return job or {"id": job_id}

    @get("/jobs/{job_id:int}", sync_to_thread=False)
    def job(self, request: Request[Any, Any, Any], job_id: int) -> dict[str, Any]:
        session = builder_session(request)
        _job_row(session, job_id)
        job = _ai(request).get(session.workspace_id, session.environment, job_id)
        assert job is not None
        return job

    @post("/jobs/{job_id:int}/cancel", status_code=200)
    async def cancel(self, request: Request[Any, Any, Any], job_id: int) -> dict[str, Any]:
        session = builder_session(request)
        _job_row(session, job_id)
        _ai(request).cancel(session.workspace_id, session.environment, job_id)
        return {"id": job_id, "cancelRequested": True}

    @post("/jobs/{job_id:int}/apply", status_code=200)
    async def apply(self, request: Request[Any, Any, Any], job_id: int) -> Response[Any]:
        """A finished document-to-course job made a new course: its screens (with their
        `unsupported` flags) become this course's draft and the interim course is removed."""
        session = builder_session(request)
        row = _job_row(session, job_id)
        job = _ai(request).get(session.workspace_id, session.environment, job_id)
        if job is None or job["status"] != "succeeded" or not isinstance(job["result"], dict):
            raise ApiError(409, "The job has not finished")
        target = int(json.loads(row["input"]).get("intoCourse") or session.claims["course"])
        made = job["result"].get("courseId")
        unsupported = {str(s) for s in job["result"].get("unsupported") or []}

        def work(w: sqlite_utils.Database) -> dict[str, Any]:
            course = _owned_row(w, session, target)
            if made is None or int(made) == target:
                return draft_state(w, course)
            source = courses.get_row(w, int(made))
            screens = json.loads(source["draft"]).get("screens", [])
            for screen in screens:
                if str(screen.get("id")) in unsupported:
                    screen["unsupported"] = True
            merged = _append_screens(json.loads(course["draft"]), screens)
            fresh_title = course["title"] in ("", UNTITLED)
            w.execute(
                "UPDATE courses SET draft = ?, title = ?, description = ?, updated = ? WHERE id = ?",
                [
                    json.dumps(merged),
                    source["title"] if fresh_title else course["title"],
                    source["description"] if fresh_title else course["description"],
                    now_iso(),
                    target,
                ],
            )
            w.execute("UPDATE courses SET deleted = ?, updated = ? WHERE id = ?", [now_iso(), now_iso(), int(made)])
            return draft_state(w, courses.get_row(w, target))

        return _answer(await session.db.awrite(work))

    @get("/jobs/{job_id:int}/events")
    async def job_events(self, request: Request[Any, Any, Any], job_id: int) -> ServerSentEvent:
        session = builder_session(request)
        _job_row(session, job_id)
        service = _ai(request)
        queue = service.listen(session.workspace_id, session.environment, job_id)

        async def events() -> AsyncIterator[str]:
            current = service.get(session.workspace_id, session.environment, job_id)
            if queue is None or current is None or current["status"] in FINAL:
                yield json.dumps({"type": current["status"] if current else "unknown", "job": current})
                return
            yield json.dumps({"type": "state", "job": current})
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), timeout=15)
                except TimeoutError:
                    yield json.dumps({"type": "ping"})
                    continue
                yield json.dumps(event)
                if event["type"] in FINAL:
                    return

        return ServerSentEvent(events())


def _ai(request: Request[Any, Any, Any]) -> AIService:
    service: AIService | None = getattr(request.app.state, "ai", None)
    if service is None:
        raise ApiError(503, "The AI service is not running on this server")
    return service


def _job_row(session: EmbedSession, job_id: int) -> dict[str, Any]:
    """A job this builder may follow: started by an embed session for its course (or a variant)."""
    row = fetch_one(session.db.read(), "SELECT * FROM jobs WHERE id = ?", [job_id])
    if row is None or not str(row["actor"]).startswith("embed-session:"):
        raise ApiError(404, "Job not found")
    params = json.loads(row["input"])
    own = int(session.claims["course"])
    if own not in (params.get("courseId"), params.get("intoCourse")):
        raise ApiError(404, "Job not found")
    return row


@get("/embed/media/{workspace:int}/{environment:str}/{name:str}", include_in_schema=False)
async def media(request: Request[Any, Any, Any], workspace: int, environment: str, name: str) -> Response[bytes]:
    """An uploaded media file. Its URL is the capability (a random 128-bit object id): images and
    videos are loaded by `<img>`/`<video>`, which cannot send the session's Bearer header."""
    match = MEDIA_NAME.match(name)
    if match is None or match.group(2) not in MEDIA_TYPES or environment not in ("test", "production"):
        raise ApiError(404, "No such media")
    ctx = context_of(request)
    ctx.actor = "embed-media"
    ctx.target = f"media:{match.group(1)}"
    store = ObjectStore(_runtime(request))
    try:
        data = await anyio.to_thread.run_sync(lambda: store.get(workspace, environment, match.group(1)))
    except ObjectError:
        raise ApiError(404, "No such media") from None
    if sniff_media(data) != match.group(2):
        raise ApiError(404, "No such media")
    return Response(
        data,
        media_type=MEDIA_TYPES[match.group(2)][0],
        headers={"content-security-policy": "default-src 'none'; sandbox", "cross-origin-resource-policy": "same-origin"},
    )


BUILDER_HANDLERS: list[Any] = [BuilderApi, media]
