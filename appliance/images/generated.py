"""Images for what the AI generates (docs/images.md "Generation options"): a generated course's cover
(`images`, on by default) and a generated screen's image (`images`, off by default). The AI jobs
cannot import this package (it sits above appliance.ai in the layers), so this module registers
its two steps with appliance.ai.tasks when the server imports it; documents call it directly.

A cover is made after the course is saved (it is stored under the course's client, else under the
course, which needs the course's id) and written with the course's other cover fields in one write;
a screen's image is made before the screen is appended. An image that cannot be made (no model or
engine answers, an engine's bad answer) leaves the course or screen without one and says why in the
job's result (`imageError`): the words are worth more than their picture. A cancel stops the job."""

from __future__ import annotations

import re
from typing import Any

from appliance.ai import tasks
from appliance.ai.engine import CancelToken, Engine
from appliance.ai.jobs import JobContext
from appliance.courses import service as courses
from appliance.errors import DomainError
from appliance.images.service import illustrate
from appliance.runtime import Runtime

TEXT_CHARS = 2000
_TAG = re.compile(r"<[^>]+>")
_SKIP = {"id", "url", "kind", "correct", "asset_alt"}


def subject_of(row: dict[str, Any]) -> tuple[str, str]:
    """Whose key encrypts a course's images: its client's, else the course's (like builder media)."""
    return ("client", str(row["client_identifier"])) if row["client_identifier"] else ("course", str(row["id"]))


def screen_text(screen: dict[str, Any]) -> str:
    """A screen's words (description and content, markup stripped) for the keyword model."""
    words: list[str] = [str(screen.get("description") or "")]

    def walk(value: Any) -> None:
        if isinstance(value, str):
            words.append(_TAG.sub(" ", value))
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for key, item in value.items():
                if key not in _SKIP:
                    walk(item)

    walk(screen.get("content") or {})
    return " ".join(" ".join(words).split())[:TEXT_CHARS]


def media_base(runtime: Runtime, params: dict[str, Any]) -> str:
    """The base of the image's URL: the one the request reached (the controller puts it in the job's
    params as `base`), else the configured public base."""
    return str(params.get("base") or runtime.settings.base_url).rstrip("/")


def cover(runtime: Runtime, engine: Engine | None, workspace_id: int, environment: str, course_id: int,
          base: str, cancel: CancelToken | None) -> dict[str, Any]:
    """Illustrate a saved course's cover; the job result's image fields."""
    database = runtime.environment(workspace_id, environment)
    row = courses.get_row(database.read(), course_id)
    try:
        image = illustrate(runtime, workspace_id=workspace_id, environment=environment, subject=subject_of(row),
                           title=str(row["title"]), text=str(row["description"] or ""),
                           theme=courses.load_theme(database.read(), row["theme_id"]), purpose="cover",
                           client_identifier=row["client_identifier"], cancel=cancel, engine=engine)
    except DomainError as exc:
        return {"images": 0, "imageError": exc.message}
    url = image.url(base, workspace_id, environment)
    database.write(lambda w: courses.set_cover(w, course_id, url, image.alt))
    return {"images": 1}


def screen_image(runtime: Runtime, engine: Engine | None, workspace_id: int, environment: str, course_id: int,
                 screen: dict[str, Any], base: str, cancel: CancelToken | None) -> dict[str, Any]:
    """Give a new screen (not yet saved) its image: `asset` and `content.asset_alt`, in place; the job
    result's image fields."""
    database = runtime.environment(workspace_id, environment)
    row = courses.get_row(database.read(), course_id)
    try:
        image = illustrate(runtime, workspace_id=workspace_id, environment=environment, subject=subject_of(row),
                           title=str(screen.get("title") or row["title"]), text=screen_text(screen),
                           theme=courses.load_theme(database.read(), row["theme_id"]), purpose="screen",
                           client_identifier=row["client_identifier"], cancel=cancel, engine=engine)
    except DomainError as exc:
        return {"images": 0, "imageError": exc.message}
    screen["asset"] = image.url(base, workspace_id, environment)
    screen["content"] = {**(screen.get("content") or {}), "asset_alt": image.alt}
    return {"images": 1}


def _course_step(ctx: JobContext, course_id: int) -> dict[str, Any]:
    if ctx.params.get("images") is False:
        return {}
    runtime = ctx.service.runtime
    return cover(runtime, ctx.engine, ctx.workspace_id, ctx.environment, course_id, media_base(runtime, ctx.params),
                 ctx.cancel)


def _screen_step(ctx: JobContext, course_id: int, screen: dict[str, Any]) -> dict[str, Any]:
    if ctx.params.get("images") is not True:
        return {}
    runtime = ctx.service.runtime
    return screen_image(runtime, ctx.engine, ctx.workspace_id, ctx.environment, course_id, screen,
                        media_base(runtime, ctx.params), ctx.cancel)


tasks.COURSE_STEPS.append(_course_step)
tasks.SCREEN_STEPS.append(_screen_step)

