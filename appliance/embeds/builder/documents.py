"""Documents into the builder: an upload (raw body, `X-Filename`) read by `appliance.documents`,
then a document or presentation turned into a course (a job) whose screens `jobs/{id}/apply` moves
into this course, unsupported ones flagged.

The upload's size limit is `documents.max_bytes`, the one limit of every document upload route:
`documents.service.ingest` enforces it, and the server middleware's body limit for `.../documents`
paths follows it."""

from __future__ import annotations

from typing import Any

import anyio
from litestar import Controller, Request, post

from appliance.ai.generation import MAX_SCREENS
from appliance.documents import service as documents
from appliance.embeds.builder.access import PATH, builder_session, owned_row, require, target
from appliance.embeds.builder.bodies import DocumentCourseBody, body_of
from appliance.embeds.builder.jobs import submit
from appliance.embeds.sessions import EmbedSession
from appliance.errors import ApiError
from appliance.server.context import runtime_of

KINDS = {"document": "document_to_course", "presentation": "presentation_to_course"}


def _owner(session: EmbedSession) -> str | None:
    """Documents belong to the author who uploaded them (the session's learner identifier)."""
    identifier = session.claims.get("identifier")
    return str(identifier) if identifier else None


class DocumentsApi(Controller):
    path = PATH
    include_in_schema = False

    # the server middleware limits a POST to .../documents to documents.max_bytes (plus overhead)
    # instead of limits.max_body_bytes, as for the headless upload; the app-wide limit is lifted here
    @post("/documents", status_code=201, request_max_body_size=None)
    async def upload_document(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        session = builder_session(request)
        course_id = target(request, session)
        owned_row(session.db.read(), session, course_id)
        filename = (request.headers.get("x-filename") or "document").strip()[:200]
        data = await request.body()
        if not data:
            raise ApiError(422, "The upload is empty")
        runtime = runtime_of(request)
        document = await anyio.to_thread.run_sync(
            lambda: documents.ingest(
                runtime, session.workspace_id, session.environment, filename, data, owner=_owner(session)
            )
        )
        return {**document, "documentId": document["id"]}

    @post("/documents/course", status_code=202)
    async def document_course(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        session = builder_session(request)
        course_id = target(request, session)
        row = owned_row(session.db.read(), session, course_id)
        require(request, session, "ai", "AI is not enabled for this builder")
        body = await body_of(request, DocumentCourseBody)
        kind = KINDS.get(body.kind)
        if kind is None:
            raise ApiError(422, DocumentCourseBody.refusals["kind"])
        document_id = body.documentId
        if document_id is None:
            raise ApiError(422, DocumentCourseBody.refusals["documentId"])
        runtime = runtime_of(request)
        # only a document this author uploaded (404 otherwise)
        await anyio.to_thread.run_sync(
            lambda: documents.get_document(
                runtime, session.workspace_id, session.environment, document_id, _owner(session)
            )
        )
        params: dict[str, Any] = {
            "documentId": document_id,
            "identifier": row["identifier"],
            "clientIdentifier": row["client_identifier"],
            "intoCourse": course_id,
        }
        for name in ("prompt", "audience", "familiarity", "tone"):
            value = getattr(body, name)
            if value and value.strip():
                params[name] = value.strip()[:2000]
        if body.screenCount is not None:
            params["screenCount"] = max(1, min(MAX_SCREENS, body.screenCount))
        return await submit(request, session, kind, params)
