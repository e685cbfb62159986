"""The document job kinds: `document_to_course` and `presentation_to_course`.

Params: `{documentId, prompt?, audience?, familiarity?, tone?, screenCount?, identifier?,
clientIdentifier?}`; result: `{"courseId": ..., "unsupported": [screen ids], "documentId": ...,
"sections": n, "flags": [the quality gate's leftover flags]}`. The course is written in one transaction at the end (nothing half-written when a
job fails or is cancelled); section summaries are cached as soon as they exist.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlite_utils

from appliance.ai.jobs import JobContext, handler
from appliance.ai.quality import Flag
from appliance.ai.tasks import after_course
from appliance.courses import service as courses
from appliance.documents import course, service
from appliance.errors import Invalid
from appliance.learners.identities import ensure_identity

Builder = Callable[..., tuple[str, str, dict[str, Any], list[int], int, list[Flag]]]


def _run(ctx: JobContext, build: Builder, *, presentation: bool) -> dict[str, Any]:
    p = ctx.params
    req = course.Request.from_params(p)
    req.retries = ctx.retries
    document = service.get_row(ctx.db.read(), req.document_id)
    if presentation and document["type"] != "pptx":
        raise Invalid("presentation_to_course needs a PowerPoint (.pptx) document")
    settings = ctx.service.runtime.settings.documents
    title, description, content, unsupported, sections, flags = build(
        ctx.engine, ctx.db, document, req, settings, ctx.progress, ctx.cancel
    )

    def save(w: sqlite_utils.Database) -> int:
        ensure_identity(w, p.get("identifier"), p.get("clientIdentifier"))
        return courses.create(w, title=title, description=description, content=content,
                              identifier=p.get("identifier"), client_identifier=p.get("clientIdentifier"))

    course_id = ctx.db.write(save)
    return {"courseId": course_id, "unsupported": unsupported, "documentId": req.document_id,
            "sections": sections, "flags": [f.to_wire() for f in flags], **after_course(ctx, course_id)}


@handler("document_to_course")
def run_document_to_course(ctx: JobContext) -> dict[str, Any]:
    return _run(ctx, course.document_course, presentation=False)


@handler("presentation_to_course")
def run_presentation_to_course(ctx: JobContext) -> dict[str, Any]:
    return _run(ctx, course.presentation_course, presentation=True)
