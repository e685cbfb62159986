"""AI generation (the cloud's generate routes) on the on-box model, plus the job
routes that follow long work (appliance extension, docs/api-differences.md).

Like the cloud, the generate routes answer when the work is done, with the course. A caller that
would rather not wait sends `Prefer: respond-async` and gets 202 with a job to follow at
`GET /jobs/{id}` or as server-sent events at `GET /jobs/{id}/events`.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import anyio
import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.response import ServerSentEvent

from appliance.ai.generation import GENERATED_TYPES, MAX_SCREENS, REFINE_OPERATIONS, refine_text
from appliance.ai.http import to_api_error
from appliance.courses import service as courses
from appliance.errors import ApiError, not_found
from appliance.headless.deps import provide_principal, set_target
from appliance.server import public
from appliance.server.sse import ai_of, job_stream
from appliance.storage.database import Database

Text = Annotated[str, msgspec.Meta(max_length=200)]
Prompt = Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]
Source = Annotated[str, msgspec.Meta(max_length=200_000)]


class CourseInput(msgspec.Struct):
    prompt: Prompt
    audience: Text | None = None
    familiarity: Text | None = None
    tone: Text | None = None
    screenCount: int | None = None
    quiz: bool | None = None  # appliance extension: false leaves out the knowledge check
    images: bool | None = None  # appliance extension: the course's cover image (default on; docs/images.md)
    identifier: Text | None = None
    clientIdentifier: Text | None = None


class ScreenInput(msgspec.Struct):
    type: str
    title: Text | None = None
    prompt: Prompt | None = None
    content: Source | None = None
    images: bool | None = None  # appliance extension: the screen's image (default off; docs/images.md)


class QuizInput(msgspec.Struct):
    prompt: Prompt | None = None
    content: Source | None = None
    questionCount: Annotated[int, msgspec.Meta(ge=1, le=10)] | None = None


class RefineInput(msgspec.Struct):
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]
    operation: str
    tone: Text | None = None


async def run_job(
    request: Request[Any, Any, Any], kind: str, params: dict[str, Any]
) -> dict[str, Any] | Response[Any]:
    """Start a job; answer 202 with it for `Prefer: respond-async`, otherwise wait for it."""
    principal = provide_principal(request)
    service = ai_of(request)
    params = {**params, "base": public.base_url(request)}  # the base of the URLs of images the job makes
    job_id, future = await anyio.to_thread.run_sync(
        lambda: service.submit(principal.workspace_id, principal.environment, kind, params, principal.actor)
    )
    if "respond-async" in request.headers.get("prefer", ""):
        job = service.get(principal.workspace_id, principal.environment, job_id)
        base = request.url.path.split("/headless/")[0]
        return Response(job, status_code=202, headers={"location": f"{base}/headless/jobs/{job_id}"})
    try:
        row = await asyncio.wrap_future(future)
    except Exception as exc:
        raise to_api_error(exc) from None
    if row["status"] != "succeeded":
        raise ApiError(409, "The job was cancelled")
    finished: dict[str, Any] = row["result"]
    return finished


async def _course_answer(
    request: Request[Any, Any, Any], db: Database, kind: str, params: dict[str, Any]
) -> Any:
    outcome = await run_job(request, kind, params)
    if isinstance(outcome, Response):
        return outcome
    return courses.wire(db.read(), int(outcome["courseId"]))


async def _generate_course(request: Request[Any, Any, Any], db: Database, data: CourseInput) -> Any:
    count = data.screenCount if data.screenCount is not None else 5
    if not 1 <= count <= MAX_SCREENS:  # the pedagogical cap (ai.generation.MAX_SCREENS): said, not silently applied
        raise ApiError(422, f"screenCount must be a number from 1 to {MAX_SCREENS}")
    if not data.prompt.strip():
        raise ApiError(422, "prompt must not be blank")
    params = {**msgspec.to_builtins(data), "screenCount": count}
    return await _course_answer(request, db, "generate_course", params)


class GenerateController(Controller):
    tags = ["AI generation"]

    @post("/generate/course", summary="Generate a course from a prompt", status_code=200)
    async def generate_course(self, request: Request[Any, Any, Any], db: Database, data: CourseInput) -> Any:
        return await _generate_course(request, db, data)

    @post("/course/generate", summary="Generate a course (legacy path)", status_code=200, deprecated=True)
    async def generate_course_legacy(
        self, request: Request[Any, Any, Any], db: Database, data: CourseInput
    ) -> Any:
        return await _generate_course(request, db, data)

    @post(
        "/generate/course/{course_id:int}/screen",
        summary="Generate one screen at the end of a course",
        status_code=200,
    )
    async def generate_screen(
        self, request: Request[Any, Any, Any], db: Database, course_id: int, data: ScreenInput
    ) -> Any:
        set_target(request, f"course:{course_id}")
        if data.type not in GENERATED_TYPES:
            raise ApiError(422, f"type must be one of {', '.join(GENERATED_TYPES)}")
        courses.get_row(db.read(), course_id)
        return await _course_answer(
            request, db, "generate_screen", {**msgspec.to_builtins(data), "courseId": course_id}
        )

    @post(
        "/generate/course/{course_id:int}/quiz",
        summary="Generate a quiz screen at the end of a course",
        status_code=200,
    )
    async def generate_quiz(
        self, request: Request[Any, Any, Any], db: Database, course_id: int, data: QuizInput | None = None
    ) -> Any:
        set_target(request, f"course:{course_id}")
        courses.get_row(db.read(), course_id)
        params = {**msgspec.to_builtins(data or QuizInput()), "courseId": course_id}
        return await _course_answer(request, db, "generate_quiz", params)

    @post("/generate/refine", summary="Refine a piece of text (appliance extension)", status_code=200)
    async def refine(self, request: Request[Any, Any, Any], data: RefineInput) -> dict[str, Any]:
        if data.operation not in REFINE_OPERATIONS:
            raise ApiError(422, f"operation must be one of {', '.join(REFINE_OPERATIONS)}")
        service = ai_of(request)
        try:
            text = await anyio.to_thread.run_sync(
                lambda: refine_text(service.engine, data.text, data.operation, data.tone or "friendly",
                                    retries=service.quality_retries)
            )
        except Exception as exc:
            raise to_api_error(exc) from None
        return {"text": text}


class JobsController(Controller):
    tags = ["Jobs"]

    @get("/jobs/{job_id:int}", summary="A job's state (appliance extension)", sync_to_thread=False)
    def get_job(self, request: Request[Any, Any, Any], job_id: int) -> dict[str, Any]:
        principal = provide_principal(request)
        job = ai_of(request).get(principal.workspace_id, principal.environment, job_id)
        if job is None:
            raise not_found("Job")
        return job

    @post("/jobs/{job_id:int}/cancel", summary="Cancel a job (appliance extension)", status_code=200)
    async def cancel_job(self, request: Request[Any, Any, Any], job_id: int) -> dict[str, Any]:
        principal = provide_principal(request)
        service = ai_of(request)
        if service.get(principal.workspace_id, principal.environment, job_id) is None:
            raise not_found("Job")
        service.cancel(principal.workspace_id, principal.environment, job_id)
        return {"id": job_id, "cancelRequested": True}

    @get("/jobs/{job_id:int}/events", summary="A job's progress as server-sent events (appliance extension)")
    async def job_events(self, request: Request[Any, Any, Any], job_id: int) -> ServerSentEvent:
        principal = provide_principal(request)
        service = ai_of(request)
        if service.get(principal.workspace_id, principal.environment, job_id) is None:
            raise not_found("Job")
        return job_stream(service, principal.workspace_id, principal.environment, job_id)
