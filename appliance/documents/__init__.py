"""Documents: upload, extraction, chunking, FTS5 retrieval and courses from documents
(docs/documents.md).

Service API (all blocking: call from a worker thread, e.g. `anyio.to_thread.run_sync`)::

    from appliance.documents import service

    service.ingest(runtime, workspace_id, environment, filename: str, data: bytes, *, owner: str | None)
        -> dict   # {id, filename, type, title, pages, chars, bytes, owner, created}
        # raises appliance.errors.TooLarge (413) / Unsupported (415: unsupported or lying type) /
        # Invalid (422: malformed, encrypted, zip bomb, XXE/entities, too many pages, no text, too slow)
    service.list_documents(runtime, ws, env, owner=None) -> list[dict]
    service.get_document(runtime, ws, env, document_id, owner=None) -> dict        # NotFound (404)
    service.delete_document(runtime, ws, env, document_id, owner=None) -> None     # hard delete + shred
    service.search(runtime, ws, env, document_id | None, query, limit=5) -> list[dict]
        # [{documentId, chunk, pages: [first, last], heading, text, score}], best first (bm25)

Job kinds (appliance.ai.jobs; submit with `AIService.submit(ws, env, kind, params, actor)` -> (job id, future))::

    "document_to_course"      params {documentId, prompt?, audience?, familiarity?, tone?,
    "presentation_to_course"          screenCount?, identifier?, clientIdentifier?}
        -> {"courseId": int, "unsupported": [screen ids], "documentId": int, "sections": int}

Progress events carry `{"screen": ..., "index": i}` as each screen is written (in completion order:
screens after the first are written concurrently), and `{"section": i, "sections": n, "pages": [a, b]}`
as a long document's sections are digested. Generated
screens that the document does not support carry `"unsupported": true` in the course draft.

Headless routes: appliance.headless.documents (POST/GET /documents, GET/DELETE /documents/{id},
GET /documents/{id}/search, POST /generate/course/document, POST /generate/course/presentation).
"""
