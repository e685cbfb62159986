"""Headless routes for documents (appliance extension, docs/api-differences.md), gated by the
`api_authoring` entitlement:

    POST   /documents                          multipart upload, field `file` (+ optional `identifier`)
    GET    /documents[?identifier=]            the environment's documents (an author's, when named)
    GET    /documents/{id}                     one document's record
    GET    /documents/{id}/search?q=&limit=    its best-matching chunks (FTS5 bm25)
    DELETE /documents/{id}                     hard delete (rows, index, history; the file's key shredded)
    POST   /generate/course/document           {documentId, ...} -> the course (202 + job with Prefer: respond-async)
    POST   /generate/course/presentation       the same for a .pptx, one screen per slide group

The upload route has its own body limit, `documents.max_bytes` (the server middleware applies it
instead of `limits.max_body_bytes` to POSTs whose path ends in `/documents`).
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio
import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import UploadFile

from appliance.ai.generation import MAX_SCREENS
from appliance.courses import service as courses
from appliance.documents import service
from appliance.errors import ApiError
from appliance.headless.deps import provide_principal, provide_runtime, require_entitlement, set_target
from appliance.headless.generate import run_job
from appliance.storage.database import Database

Text = Annotated[str, msgspec.Meta(max_length=200)]
UPLOAD_OVERHEAD = 64 * 1024  # multipart headers and boundaries on top of the file itself


class DocumentCourseInput(msgspec.Struct):
    documentId: int
    prompt: Annotated[str, msgspec.Meta(max_length=4000)] | None = None
    audience: Text | None = None
    familiarity: Text | None = None
    tone: Text | None = None
    screenCount: int | None = None
    identifier: Text | None = None
    clientIdentifier: Text | None = None
    images: bool | None = None  # appliance extension: the course's cover image (default on; docs/images.md)


def upload_limit(max_bytes: int) -> int:
    """The body limit of an upload request for a document limit of `max_bytes`."""
    return max_bytes + UPLOAD_OVERHEAD


class DocumentsController(Controller):
    tags = ["Documents (appliance extension)"]

    @post("/documents", summary="Upload a document (PDF, DOCX, PPTX, TXT, Markdown)", status_code=201,
          request_max_body_size=None)
    async def upload(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        require_entitlement(request, "api_authoring")
        principal = provide_principal(request)
        runtime = provide_runtime(request)
        if "multipart/form-data" not in request.headers.get("content-type", ""):
            raise ApiError(415, "Upload the document as multipart/form-data with the file in the field `file`")
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ApiError(422, "The multipart field `file` with the document is missing")
        data = await upload.read()
        await upload.close()
        owner = form.get("identifier")
        owner = owner if isinstance(owner, str) and owner else None
        if owner is not None and len(owner) > 200:
            raise ApiError(422, "identifier is at most 200 characters")
        record = await anyio.to_thread.run_sync(
            lambda: service.ingest(runtime, principal.workspace_id, principal.environment,
                                   upload.filename or "", data, owner=owner)
        )
        set_target(request, f"document:{record['id']}")
        return record

    @get("/documents", summary="List documents", sync_to_thread=False)
    def list_documents(self, request: Request[Any, Any, Any], identifier: str | None = None) -> list[dict[str, Any]]:
        require_entitlement(request, "api_authoring")
        principal = provide_principal(request)
        return service.list_documents(provide_runtime(request), principal.workspace_id, principal.environment,
                                      owner=identifier)

    @get("/documents/{document_id:int}", summary="One document", sync_to_thread=False)
    def get_document(self, request: Request[Any, Any, Any], document_id: int) -> dict[str, Any]:
        require_entitlement(request, "api_authoring")
        set_target(request, f"document:{document_id}")
        principal = provide_principal(request)
        return service.get_document(provide_runtime(request), principal.workspace_id, principal.environment,
                                    document_id)

    @get("/documents/{document_id:int}/search", summary="Search a document's text", sync_to_thread=False)
    def search(self, request: Request[Any, Any, Any], document_id: int, q: str, limit: int = 5
               ) -> list[dict[str, Any]]:
        require_entitlement(request, "api_authoring")
        set_target(request, f"document:{document_id}")
        principal = provide_principal(request)
        return service.search(provide_runtime(request), principal.workspace_id, principal.environment,
                              document_id, q[:1000], limit)

    @delete("/documents/{document_id:int}", summary="Delete a document for good", status_code=200)
    async def remove(self, request: Request[Any, Any, Any], document_id: int) -> dict[str, Any]:
        require_entitlement(request, "api_authoring")
        set_target(request, f"document:{document_id}")
        principal = provide_principal(request)
        runtime = provide_runtime(request)
        await anyio.to_thread.run_sync(
            lambda: service.delete_document(runtime, principal.workspace_id, principal.environment, document_id)
        )
        return {"id": document_id, "deleted": True}

    @post("/generate/course/document", summary="Generate a course from a document", status_code=200)
    async def course_from_document(
        self, request: Request[Any, Any, Any], db: Database, data: DocumentCourseInput
    ) -> Any:
        return await _generate(request, db, data, "document_to_course")

    @post("/generate/course/presentation", summary="Generate a course from a presentation", status_code=200)
    async def course_from_presentation(
        self, request: Request[Any, Any, Any], db: Database, data: DocumentCourseInput
    ) -> Any:
        return await _generate(request, db, data, "presentation_to_course")


async def _generate(request: Request[Any, Any, Any], db: Database, data: DocumentCourseInput, kind: str) -> Any:
    require_entitlement(request, "api_authoring")
    set_target(request, f"document:{data.documentId}")
    document = service.get_row(db.read(), data.documentId)
    if kind == "presentation_to_course" and document["type"] != "pptx":
        raise ApiError(422, "A course from a presentation needs a PowerPoint (.pptx) document")
    params = msgspec.to_builtins(data)
    if data.screenCount is not None:
        params["screenCount"] = max(1, min(MAX_SCREENS, data.screenCount))
    outcome = await run_job(request, kind, params)
    if isinstance(outcome, Response):
        return outcome
    wire = courses.wire(db.read(), int(outcome["courseId"]))
    wire["unsupportedScreens"] = outcome.get("unsupported", [])
    wire["documentId"] = data.documentId
    return wire
