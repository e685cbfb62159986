"""Narration of a course (appliance extension; docs/ai.md "Narration", docs/api-differences.md).

`POST /courses/{id}/narrate` (also `/course/{id}/narrate`), body `{screenIds?, force?}`, starts the
`narrate_course` job and answers 202 with it; follow it at `GET /jobs/{id}`, `GET /jobs/{id}/events`
and cancel it at `POST /jobs/{id}/cancel`. Needs the `narrations` entitlement (403) and the
text-to-speech runtime (503 when it is not installed).
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio
import msgspec
from litestar import Controller, Request, Response, post

from appliance.ai.narration import KIND, require_installed
from appliance.courses import service as courses
from appliance.errors import not_found
from appliance.headless.deps import provide_principal, provide_runtime, require_entitlement, set_target
from appliance.server.sse import ai_of
from appliance.storage.database import Database


class NarrateInput(msgspec.Struct):
    screenIds: Annotated[list[int], msgspec.Meta(max_length=200)] | None = None
    force: bool = False


class NarrationController(Controller):
    tags = ["AI generation"]

    @post(
        ["/courses/{course_id:int}/narrate", "/course/{course_id:int}/narrate"],
        summary="Narrate a course's screens with the on-box voice (appliance extension)",
        status_code=202,
    )
    async def narrate(
        self, request: Request[Any, Any, Any], db: Database, course_id: int, data: NarrateInput | None = None
    ) -> Response[Any]:
        set_target(request, f"course:{course_id}")
        require_entitlement(request, "narrations")
        row = courses.get_row(db.read(), course_id)
        if row["deleted"] is not None:
            raise not_found("Course")
        settings = provide_runtime(request).settings.ai
        await anyio.to_thread.run_sync(lambda: require_installed(settings))
        principal = provide_principal(request)
        service = ai_of(request)
        body = data or NarrateInput()
        params = {"courseId": course_id, "screenIds": body.screenIds, "force": body.force,
                  "clientIdentifier": row["client_identifier"]}
        job_id, _future = await anyio.to_thread.run_sync(
            lambda: service.submit(principal.workspace_id, principal.environment, KIND, params, principal.actor)
        )
        base = request.url.path.split("/headless/")[0]
        return Response(service.get(principal.workspace_id, principal.environment, job_id), status_code=202,
                        headers={"location": f"{base}/headless/jobs/{job_id}"})
