"""Who may use a builder route, on which course, with which tools.

Every route takes the Bearer session JWT of an *edit* session (a view session gets 403) and works on
the session's own course, or on one of its language variants (`?course=<variant id>`). A course
owned by another client (its `clientIdentifier` differs from the token's) is refused with 403.
The route modules share this module's session, course and capability checks, and `answer`.
"""

from __future__ import annotations

from typing import Any

import sqlite_utils
from litestar import Request, Response

from appliance.embeds.routes import embed_session
from appliance.embeds.sessions import EmbedSession
from appliance.errors import ApiError
from appliance.server.context import context_of, runtime_of
from appliance.storage.database import fetch_one
from appliance.workspaces import service as workspaces

PATH = "/embed/api/builder"


def builder_session(request: Request[Any, Any, Any]) -> EmbedSession:
    return embed_session(request, ("course",), "edit")


def owned_row(db: sqlite_utils.Database, session: EmbedSession, course_id: int) -> dict[str, Any]:
    """The course row, if this session may edit it: its own course or a variant of it, of its client."""
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


def target(request: Request[Any, Any, Any], session: EmbedSession) -> int:
    """The course a call works on: `?course=` (a variant) or the session's own; named in the audit log.

    The id is not range-checked here: an out-of-range one reaches SQLite, whose OverflowError the
    app answers as 422 and logs as "number out of range" (appliance.server.app)."""
    raw = request.query_params.get("course")
    course_id = int(raw) if raw and raw.isdigit() else int(session.claims["course"])
    context_of(request).target = f"course:{course_id}"
    return course_id


def own_course(request: Request[Any, Any, Any], session: EmbedSession) -> int:
    """The session's own course (never a variant), named in the audit log."""
    course_id = int(session.claims["course"])
    context_of(request).target = f"course:{course_id}"
    return course_id


def _entitled(request: Request[Any, Any, Any], session: EmbedSession, name: str) -> bool:
    workspace = workspaces.get_workspace(runtime_of(request).control, session.workspace_id)
    return bool(workspace["entitlements"].get(name, False))


def capabilities(request: Request[Any, Any, Any], session: EmbedSession) -> dict[str, bool]:
    """What the builder offers this session: its options, the workspace's entitlements and whether
    the AI service runs (documents need AI: the course is written by the model)."""
    options = session.options
    ai_service = getattr(request.app.state, "ai", None)
    ai = ai_service is not None and options.get("ai") is not False
    return {
        "publish": options.get("publishing") is True and _entitled(request, session, "api_authoring"),
        "ai": ai,
        "translations": ai
        and options.get("translations") is True
        and _entitled(request, session, "api_advanced")
        and _entitled(request, session, "translations"),
        "documents": ai,
        "narrations": ai_service is not None
        and options.get("narrations") is True
        and _entitled(request, session, "narrations"),
    }


def require(request: Request[Any, Any, Any], session: EmbedSession, capability: str, message: str) -> None:
    if not capabilities(request, session)[capability]:
        raise ApiError(403, message)


def answer(state: dict[str, Any]) -> Response[Any]:
    """A draft state (builder.service.draft_state), with its revision as the ETag."""
    return Response(state, headers={"etag": f'"{state["revision"]}"'})
