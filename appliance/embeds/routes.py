"""Embed pages and the session API the page calls (docs/embeds.md; the session: appliance.embeds.sessions).

* `GET /embed/{course|collection|analytics/...}/{token}`: the page. The token is verified here to
  pick the workspace's `frame-ancestors`; the HTML has no inline script, the token stays in the
  URL path and never reaches a log (the middleware redacts token-like path segments).
* `POST /embed/api/session` `{token}`: signed-URL token -> session JWT + refresh token (JSON).
* `POST /embed/api/session/refresh` `{refreshToken}`: rotation with reuse detection.
* Bearer-authenticated: `GET /embed/api/course`, `GET /embed/api/course/narration/{screen id}` (the
  screen's narration, WAV), `POST /embed/api/track`, `GET /embed/api/collection`,
  `GET /embed/api/analytics`, `GET /embed/api/draft` (edit sessions only).
* `POST /embed/csp-report`: CSP violation reports (logged, e.g. a host outside frame-ancestors).

No route here sets a cookie. Every failure of a token or session is the same 401 D1 body.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import anyio
from litestar import Controller, MediaType, Request, Response, get, post
from litestar.static_files import create_static_files_router

from appliance import logs
from appliance.ai import narration
from appliance.embeds import origins, player, sessions
from appliance.embeds.sessions import EmbedSession, SessionInvalid
from appliance.embeds.tokens import URL_TYP, TokenInvalid
from appliance.errors import ApiError, error_body
from appliance.runtime import Runtime
from appliance.server.context import context_of, runtime_of
from appliance.server.failures import record_failure
from appliance.storage.database import fetch_one
from appliance.workspaces.service import NotFound, Principal

WEB_DIR = Path(__file__).parent / "web"
STATIC_URL = "/embed/static"
SESSION_REFUSED = "The embed session is invalid or has expired; reload the page to get a new link"
# reloading cannot fix a refused link (the host would have to mint a new one): say who can
LINK_REFUSED = "This embed link is invalid or has expired: ask the site that showed you this course for a new link"
ENTRIES = {
    "course": "course.js",
    "collection": "collection.js",
    "analytics/course": "analytics.js",
    "analytics/collection": "analytics.js",
    "analytics/user": "analytics.js",
}
TITLES = {"course": "Course", "collection": "Collection"}


def _attribute(ctx_request: Request[Any, Any, Any], claims: dict[str, Any], actor: str, target: str) -> None:
    """Name the embed caller in the audit log (workspace, environment, session; never a token)."""
    ctx = context_of(ctx_request)
    ctx.principal = Principal(
        workspace_id=int(claims["workspace"]), environment=str(claims["environment"]), key_id=actor
    )
    ctx.actor = actor
    ctx.target = target


def _target(claims: dict[str, Any]) -> str:
    if claims.get("course") is not None:
        return f"course:{claims['course']}"
    if claims.get("collection") is not None:
        return f"collection:{claims['collection']}"
    return "user" if claims.get("kind") == "analytics/user" else str(claims.get("kind"))


def _page(kind: str, entry: str, status: int, headers: dict[str, str], data: dict[str, str]) -> Response[str]:
    attrs = " ".join(f'data-{k}="{html.escape(v, quote=True)}"' for k, v in data.items())
    body = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{html.escape(TITLES.get(kind, "Analytics"))}</title>
<link rel="stylesheet" href="{STATIC_URL}/app.css">
<script type="module" src="{STATIC_URL}/{entry}"></script>
</head>
<body {attrs}>
<div id="app"><p class="loading" role="status">Loading…</p></div>
</body>
</html>
"""
    return Response(body, status_code=status, media_type=MediaType.HTML, headers=headers)


def serve_page(request: Request[Any, Any, Any], kind: str, token: str) -> Response[str]:
    runtime = runtime_of(request)
    try:
        claims = sessions.signer_of(runtime).verify(token, URL_TYP)
        if claims["kind"] != kind:
            raise TokenInvalid("wrong kind for this page")
        allowed = origins.allowed_origins(
            runtime.control, int(claims["workspace"]), str(claims["environment"])
        )
    except (TokenInvalid, NotFound) as exc:
        logs.event("embed link refused", level=20, reason=str(exc), kind=kind)
        # the refusal page may be framed by anyone: it shows only a generic message
        headers = origins.page_headers([], "test")
        if "text/html" in request.headers.get("accept", ""):
            return _page(kind, "refused.js", 401, headers, {"kind": kind, "message": LINK_REFUSED})
        return Response(
            json.dumps(error_body(401, LINK_REFUSED)),
            status_code=401,
            media_type=MediaType.JSON,
            headers=headers,
        )
    _attribute(request, claims, "embed-link", _target(claims))
    _note_refused_framing(request, runtime, claims, allowed, kind)
    headers = origins.page_headers(allowed, str(claims["environment"]))
    return _page(kind, ENTRIES[kind], 200, headers, {"kind": kind, "environment": str(claims["environment"])})


def _note_refused_framing(
    request: Request[Any, Any, Any], runtime: Runtime, claims: dict[str, Any], allowed: list[str], kind: str
) -> None:
    """An iframe load the browser will refuse (frame-ancestors) shows the partner only a blank frame;
    record it as the environment's `setup/status` lastFailure, naming the origin and the fix."""
    if request.headers.get("sec-fetch-dest", "") not in ("iframe", "frame"):
        return
    environment = str(claims["environment"])
    parent = origins.parent_origin(request.headers.get("referer", ""))
    if not origins.framing_refused(allowed, environment, parent):
        return
    workspace = int(claims["workspace"])
    who = parent or "a host page that sends no Referer"
    message = (
        f"The {kind} embed was refused by frame-ancestors: {who} is not an allowed host origin of the "
        f"{environment} environment"
    )
    shown = parent or "https://your-host.example"
    fix = (
        f"Allow the host page's origin: PUT /v1/headless/embed/origins with the list including \"{shown}\" "
        f"(the list replaces the current one), or `appliance workspace origins --workspace {workspace} "
        f"--env {environment} --add {shown}`."
    )
    logs.event("embed framing refused", level=30, origin=who, environment=environment, workspace=workspace)
    try:
        runtime.environment(workspace, environment).submit(
            lambda db: record_failure(db, "GET", f"/embed/{kind}/[redacted]", 403, message, fix)
        )
    except Exception:  # noqa: S110 - diagnostics must never break the page
        pass


@get("/embed/course/{token:str}", sync_to_thread=False, include_in_schema=False)
def course_page(request: Request[Any, Any, Any], token: str) -> Response[str]:
    return serve_page(request, "course", token)


@get("/embed/collection/{token:str}", sync_to_thread=False, include_in_schema=False)
def collection_page(request: Request[Any, Any, Any], token: str) -> Response[str]:
    return serve_page(request, "collection", token)


@get("/embed/analytics/{what:str}/{token:str}", sync_to_thread=False, include_in_schema=False)
def analytics_page(request: Request[Any, Any, Any], what: str, token: str) -> Response[str]:
    kind = f"analytics/{what}"
    if kind not in ENTRIES:
        raise ApiError(404, "No such embed")
    return serve_page(request, kind, token)


@post("/embed/csp-report", status_code=204, include_in_schema=False)
async def csp_report(request: Request[Any, Any, Any]) -> None:
    raw = await request.body()
    try:
        report = json.loads(raw[:8192]).get("csp-report", {})
    except (ValueError, AttributeError):
        report = {}
    logs.event(
        "csp violation",
        level=30,
        directive=str(report.get("effective-directive", ""))[:100],
        blocked=str(report.get("blocked-uri", ""))[:200],
    )


async def _json(request: Request[Any, Any, Any]) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise ApiError(400, "Malformed JSON body") from None
    if not isinstance(value, dict):
        raise ApiError(422, "The body must be a JSON object")
    return value


def _context(runtime: Runtime, issued: dict[str, Any]) -> dict[str, Any]:
    claims = issued.pop("claims")
    environment = str(claims["environment"])
    options = claims.get("options") or {}
    return {
        **issued,
        "context": {
            "kind": claims["kind"],
            "action": claims["action"],
            "environment": environment,
            "testMode": environment == "test",
            "course": claims.get("course"),
            "collection": claims.get("collection"),
            "identifier": claims.get("identifier"),
            "name": claims.get("name"),
            "options": options,
            "hostOrigins": origins.allowed_origins(runtime.control, int(claims["workspace"]), environment),
        },
    }


def embed_session(
    request: Request[Any, Any, Any], kinds: tuple[str, ...], action: str | None = None
) -> EmbedSession:
    """The Bearer session of an embed API call (401 when invalid or expired), attributed in the audit
    log; 403 unless its kind is one of `kinds` and (when given) its action is `action`."""
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.startswith("Bearer ") else ""
    try:
        session = sessions.authenticate(runtime_of(request), token)
    except SessionInvalid as exc:
        logs.event("embed session refused", level=20, reason=str(exc))
        raise ApiError(401, SESSION_REFUSED, {"www-authenticate": "Bearer"}) from None
    _attribute(request, session.claims, f"embed-session:{session.session_id}", _target(session.claims))
    if session.kind not in kinds:
        raise ApiError(403, "This embed session cannot use this route")
    if action is not None and session.action != action:
        raise ApiError(403, f"This embed session is not allowed to {action}")
    return session


class EmbedApi(Controller):
    path = "/embed/api"
    include_in_schema = False

    @post("/session", status_code=200)
    async def open_session(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        body = await _json(request)
        runtime = runtime_of(request)
        token = body.get("token")
        try:
            if not isinstance(token, str):
                raise SessionInvalid("no token")
            issued = sessions.exchange(runtime, token)
            if body.get("kind") is not None and body.get("kind") != issued["claims"]["kind"]:
                raise SessionInvalid("wrong kind")
        except SessionInvalid as exc:
            logs.event("embed exchange refused", level=20, reason=str(exc))
            raise ApiError(401, LINK_REFUSED) from None
        claims = issued["claims"]
        _attribute(request, claims, "embed-exchange", _target(claims))
        return _context(runtime, issued)

    @post("/session/refresh", status_code=200)
    async def refresh_session(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        body = await _json(request)
        runtime = runtime_of(request)
        token = body.get("refreshToken")
        try:
            if not isinstance(token, str):
                raise SessionInvalid("no refresh token")
            issued = sessions.refresh(runtime, token)
        except SessionInvalid as exc:
            logs.event("embed refresh refused", level=20, reason=str(exc))
            raise ApiError(401, SESSION_REFUSED) from None
        claims = issued["claims"]
        _attribute(request, claims, "embed-refresh", _target(claims))
        return _context(runtime, issued)

    @get("/course", sync_to_thread=False)
    def course(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        session = embed_session(request, ("course", "collection"), "view")
        raw = request.query_params.get("id")
        target = _course_of(session, int(raw) if raw and raw.isdigit() else None)
        reader = session.db.read()
        theme_id = session.claims.get("themeId")
        return {
            "course": player.course_for_player(
                reader, target, theme_id if isinstance(theme_id, int) else None, _language_option(session)
            ),
            "tracking": player.tracking_state(reader, target, session.claims.get("identifier")),
        }

    @get("/course/narration/{screen_id:int}")
    async def narration(self, request: Request[Any, Any, Any], screen_id: int) -> Response[bytes]:
        """A screen's narration (WAV) of the published course this session may read (`?id=` picks a
        collection's course). Fetched with the Bearer header and played from a blob: URL."""
        session = embed_session(request, ("course", "collection"), "view")
        raw = request.query_params.get("id")
        target = _course_of(session, int(raw) if raw and raw.isdigit() else None)
        context_of(request).target = f"course:{target}"
        row = player.played_row(session.db.read(), target, _language_option(session))
        content = player.published_content(row)
        runtime = runtime_of(request)
        data = await anyio.to_thread.run_sync(
            lambda: narration.screen_clip(runtime, session.workspace_id, session.environment, content, screen_id)
        )
        return Response(data, media_type="audio/wav", headers=narration.AUDIO_HEADERS)

    @post("/track", status_code=200)
    async def track(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        session = embed_session(request, ("course", "collection"), "view")
        body = await _json(request)
        course_id = body.get("courseId")
        target = _course_of(session, course_id if isinstance(course_id, int) else None)
        identifier = session.claims.get("identifier")
        if not identifier:
            raise ApiError(403, "This embed session has no learner to track")
        event = str(body.get("event", ""))
        language = _language_option(session)

        def job(w: Any) -> dict[str, Any]:
            seconds = sessions.elapsed_seconds(w, session, body.get("seconds"))
            return player.track(
                w,
                target,
                str(identifier),
                session.claims.get("clientIdentifier"),
                event,
                body,
                seconds=seconds,
                language=language,
                name=session.claims.get("name"),
            )

        return await session.db.awrite(job)

    @get("/collection", sync_to_thread=False)
    def collection(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        session = embed_session(request, ("collection",), "view")
        return player.collection_for_player(
            session.db.read(), int(session.claims["collection"]), session.claims.get("identifier")
        )

    @get("/analytics", sync_to_thread=False)
    def analytics(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        session = embed_session(request, ("analytics/course", "analytics/collection", "analytics/user"))
        data = player.analytics(session.db.read(), session.claims)
        options = session.options
        data["options"] = {k: options.get(k, True) is not False for k in ("stats", "chart", "table")}
        return data

    @get("/draft", sync_to_thread=False)
    def draft(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        """The editable draft: only an edit session may read it (the builder's entry point)."""
        session = embed_session(request, ("course",), "edit")
        row = fetch_one(
            session.db.read(), "SELECT id, title, draft FROM courses WHERE id = ?", [session.claims["course"]]
        )
        if row is None:
            raise ApiError(404, "Course not found")
        return {"id": row["id"], "title": row["title"], "content": json.loads(row["draft"])}


def _language_option(session: EmbedSession) -> str | None:
    """The embed's `language` option: which language variant the learner sees (player.played_row)."""
    value = session.options.get("language")
    return value[:35] if isinstance(value, str) and value else None


def _course_of(session: EmbedSession, requested: int | None) -> int:
    """The one course a session may touch: its own, or (collections) one of the collection's."""
    if session.kind == "course":
        own = int(session.claims["course"])
        if requested is not None and requested != own:
            raise ApiError(403, "This embed session is for another course")
        return own
    allowed = player.collection_course_ids(session.db.read(), int(session.claims["collection"]))
    if requested is None or requested not in allowed:
        raise ApiError(403, "That course is not part of this collection")
    return requested


static_router = create_static_files_router(STATIC_URL, directories=[WEB_DIR], include_in_schema=False)

EMBED_HANDLERS: list[Any] = [
    course_page,
    collection_page,
    analytics_page,
    csp_report,
    EmbedApi,
    static_router,
]
