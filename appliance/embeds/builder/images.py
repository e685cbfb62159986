"""The builder's "Illustrate" (docs/embeds.md "Images"): an image for one screen of the draft, made
at once (`POST images/screen`), or for every screen without one as a job with progress
(`POST images/screens`, job `builder_illustrate_screens`, followed at `jobs/{id}` like the AI jobs).

Both call appliance.images.service.illustrate, which stores the image encrypted under the course's
client (or the course) and counts one `image_generations` for the client. "Illustrate this screen"
answers the image (URL and the model's alt text) and leaves the draft alone: the builder puts it on
the screen as an ordinary, undoable edit. The job writes its images into the draft (`asset` and
`content.asset_alt`) once all are made; cancelled or failed, it deletes the images it made and the
draft is unchanged. Replacing an image with the author's own (`POST media`) and removing it are draft
edits only.
"""

from __future__ import annotations

import json
import re
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Annotated, Any

import anyio
import msgspec
import sqlite_utils
from litestar import Controller, Request, Response, post, put

from appliance.ai.errors import AIError
from appliance.ai.http import to_api_error
from appliance.ai.jobs import JobContext, handler
from appliance.courses import service as courses
from appliance.embeds.builder import service
from appliance.embeds.builder.access import PATH, answer, builder_session, owned_row, require, target
from appliance.embeds.builder.bodies import Body, body_of
from appliance.embeds.builder.jobs import submit
from appliance.errors import ApiError, DomainError
from appliance.images.generated import TEXT_CHARS, screen_text, subject_of
from appliance.images.service import Illustration, illustrate
from appliance.runtime import Runtime
from appliance.server import public
from appliance.server.context import context_of, runtime_of
from appliance.server.sse import ai_of
from appliance.storage.objects import ObjectStore

KIND = "builder_illustrate_screens"
AI_OFF = "AI is not enabled for this builder"
_MEDIA_PATH = re.compile(r"^/embed/media/(\d+)/(test|production)/[0-9a-f]{32}\.(png|jpg|gif|webp|svg)$")


class ScreenImageBody(Body):
    refusals = {"screenId": "screenId must be the id of a screen of the draft"}

    screenId: int


class CoverBody(Body):
    refusals = {"url": "url must be an image of this course's media, or null",
                "alt": "alt must be text of at most 300 characters"}

    url: str | None = None
    alt: Annotated[str, msgspec.Meta(max_length=300)] = ""


class AllImagesBody(Body):
    refusals = {"replace": "replace must be true or false"}

    replace: bool = False  # also the screens that already have an image


def _illustrate_screen(runtime: Runtime, workspace_id: int, environment: str, row: dict[str, Any],
                       screen: dict[str, Any], ctx: JobContext | None = None, engine: Any = None) -> Illustration:
    theme = courses.load_theme(runtime.environment(workspace_id, environment).read(), row["theme_id"])
    return illustrate(
        runtime, workspace_id=workspace_id, environment=environment, subject=subject_of(row),
        title=str(screen.get("title") or row["title"]), text=screen_text(screen), theme=theme, purpose="screen",
        client_identifier=row["client_identifier"], cancel=ctx.cancel if ctx else None,
        engine=ctx.engine if ctx else engine,
    )


def set_images(w: sqlite_utils.Database, course_id: int, images: dict[int, tuple[str, str]]) -> int:
    """Put `images` ({screen id: (url, alt)}) on the draft's screens still there; how many were."""
    row = courses.get_row(w, course_id)
    content = json.loads(row["draft"])
    placed = 0
    for screen in content.get("screens", []):
        made = images.get(int(screen.get("id") or 0))
        if made is not None:
            screen["asset"] = made[0]
            screen["content"] = {**(screen.get("content") or {}), "asset_alt": made[1]}
            placed += 1
    service.save(w, row, service.etag_of(row), service.clean_content(content), None, None, msgspec.UNSET)
    return placed


@handler(KIND)
def run_illustrate_screens(ctx: JobContext) -> dict[str, Any]:
    """Each screen without an image (or every screen, `replace`) illustrated, several at once (their
    keyword requests share the job's cancel token, so the local engine decodes up to `parallel - 1`
    of them together as one caller), each reported as it is done; the images written into the draft
    at the end, or deleted if the job does not finish."""
    p = ctx.params
    runtime = ctx.service.runtime
    course_id = int(p["courseId"])
    row = courses.get_row(ctx.db.read(), course_id)
    screens = json.loads(row["draft"]).get("screens", [])
    todo = [(i, s) for i, s in enumerate(screens) if p.get("replace") or not s.get("asset")]
    made: dict[int, tuple[str, str]] = {}
    stored: list[str] = []
    lock = threading.Lock()
    ctx.progress(0.0, f"Illustrating {len(todo)} screens")

    def one(index: int, screen: dict[str, Any]) -> None:
        image = _illustrate_screen(runtime, ctx.workspace_id, ctx.environment, row, screen, ctx)
        with lock:
            stored.append(image.object_id)
            made[int(screen["id"])] = (image.url(p["base"], ctx.workspace_id, ctx.environment), image.alt)
            done = len(made)
            ctx.progress(done / max(1, len(todo)), f"Illustrated screen {index + 1} ({done} of {len(todo)})",
                         {"screen": {"id": screen["id"], "title": screen.get("title", ""), "type": screen.get("type")},
                          "index": index})

    workers = max(1, min(len(todo), int(getattr(ctx.engine, "parallel", 2)) - 1))
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="illustrate") as pool:
            futures = [pool.submit(one, index, screen) for index, screen in todo]
            wait(futures, return_when=FIRST_EXCEPTION)
            failed = next((f.exception() for f in futures if f.done() and f.exception() is not None), None)
            if failed is not None:
                ctx.cancel.cancel()  # the job ends with this error: the others stop at their next step
                raise failed
        placed = ctx.db.write(lambda w: set_images(w, course_id, made)) if made else 0
    except BaseException:
        store = ObjectStore(runtime)
        for object_id in stored:
            store.delete(ctx.workspace_id, ctx.environment, object_id)
        raise
    return {"courseId": course_id, "illustrated": placed}


class ImagesApi(Controller):
    path = PATH
    include_in_schema = False

    @post("/images/screen", status_code=200)
    async def illustrate_screen(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        """An image for one screen of the saved draft: `{url, alt, source, bytes, screenId}`."""
        session = builder_session(request)
        course_id = target(request, session)
        require(request, session, "ai", AI_OFF)
        row = owned_row(session.db.read(), session, course_id)
        body = await body_of(request, ScreenImageBody)
        screen = next((s for s in json.loads(row["draft"]).get("screens", []) if s.get("id") == body.screenId), None)
        if screen is None:
            raise ApiError(422, ScreenImageBody.refusals["screenId"])
        context_of(request).target = f"course:{course_id}/screen:{body.screenId}"
        runtime, engine = runtime_of(request), ai_of(request).engine
        try:
            image = await anyio.to_thread.run_sync(
                lambda: _illustrate_screen(runtime, session.workspace_id, session.environment, row, screen, engine=engine)
            )
        except (AIError, DomainError) as exc:  # no model or engine answers (503), a bad image (502/422)
            raise to_api_error(exc) from None
        url = image.url(public.base_url(request), session.workspace_id, session.environment)
        return {"screenId": body.screenId, "url": url, "alt": image.alt, "source": image.source, "bytes": image.bytes}

    @post("/images/screens", status_code=202)
    async def illustrate_all(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        """Every screen of the draft without an image (or all of them: `replace`), as a job."""
        session = builder_session(request)
        course_id = target(request, session)
        require(request, session, "ai", AI_OFF)
        row = owned_row(session.db.read(), session, course_id)
        body = await body_of(request, AllImagesBody)
        screens = json.loads(row["draft"]).get("screens", [])
        if not any(body.replace or not s.get("asset") for s in screens):
            raise ApiError(422, "Every screen already has an image" if screens else "The course has no screens yet")
        params = {"courseId": course_id, "replace": body.replace, "base": public.base_url(request)}
        return await submit(request, session, KIND, params)

    @post("/images/cover", status_code=200)
    async def illustrate_cover(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """A cover for the course (its title, description and screen titles), set at once (`image`,
        `thumbnail`, `start.image_alt`); answers the draft state."""
        session = builder_session(request)
        course_id = target(request, session)
        require(request, session, "ai", AI_OFF)
        row = owned_row(session.db.read(), session, course_id)
        runtime, engine = runtime_of(request), ai_of(request).engine
        titles = " ".join(str(s.get("title") or "") for s in json.loads(row["draft"]).get("screens", []))
        theme = courses.load_theme(session.db.read(), row["theme_id"])
        try:
            image = await anyio.to_thread.run_sync(lambda: illustrate(
                runtime, workspace_id=session.workspace_id, environment=session.environment, subject=subject_of(row),
                title=str(row["title"]), text=f"{row['description'] or ''} {titles}"[:TEXT_CHARS], theme=theme,
                purpose="cover", client_identifier=row["client_identifier"], engine=engine))
        except (AIError, DomainError) as exc:
            raise to_api_error(exc) from None
        url = image.url(public.base_url(request), session.workspace_id, session.environment)
        return answer(await session.db.awrite(lambda w: _cover(w, session, course_id, url, image.alt)))

    @put("/images/cover", status_code=200)
    async def set_cover(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """The cover set to one of this workspace's media (an upload, an earlier cover: undo) or
        removed (`url` null); answers the draft state."""
        session = builder_session(request)
        course_id = target(request, session)
        owned_row(session.db.read(), session, course_id)
        body = await body_of(request, CoverBody)
        if body.url is not None:
            found = _MEDIA_PATH.match(body.url.removeprefix(public.base_url(request)))
            if found is None or (int(found.group(1)), found.group(2)) != (session.workspace_id, session.environment):
                raise ApiError(422, CoverBody.refusals["url"])
        url, alt = body.url, body.alt
        return answer(await session.db.awrite(lambda w: _cover(w, session, course_id, url, alt if url else None)))


def _cover(w: sqlite_utils.Database, session: Any, course_id: int, url: str | None, alt: str | None) -> dict[str, Any]:
    courses.set_cover(w, course_id, url, alt)
    return service.draft_state(w, owned_row(w, session, course_id))
