"""The job kinds: each reads its input, calls appliance.ai.generation, and writes the result with
the course service in one transaction (nothing half-written when a job fails or is cancelled)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import sqlite_utils

from appliance.ai.course_writer import CourseBrief, draft_course
from appliance.ai.generation import (
    generate_quiz,
    generate_screen,
    through_the_gate,
    translate_screens,
)
from appliance.ai.jobs import JobContext, handler
from appliance.courses import service as courses
from appliance.errors import not_found
from appliance.learners.identities import ensure_identity
from appliance.security.audit import now_iso
from appliance.storage.database import fetch_one

# steps a package above this one adds to the jobs (appliance.images.generated registers the images:
# a generated course's cover, a generated screen's image); each returns fields for the job's result
CourseStep = Callable[[JobContext, int], dict[str, Any]]  # (job, saved course id)
ScreenStep = Callable[[JobContext, int, dict[str, Any]], dict[str, Any]]  # (job, course id, new screen)
COURSE_STEPS: list[CourseStep] = []
SCREEN_STEPS: list[ScreenStep] = []


def after_course(ctx: JobContext, course_id: int) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    for step in COURSE_STEPS:
        extra.update(step(ctx, course_id))
    return extra


@handler("generate_course")
def run_generate_course(ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    brief = CourseBrief(prompt=p["prompt"], audience=p.get("audience") or "employees",
                        familiarity=p.get("familiarity") or "beginner", tone=p.get("tone") or "professional",
                        screen_count=int(p.get("screenCount") or 5), source=p.get("source"),
                        quiz=p.get("quiz") is not False, retries=ctx.retries)
    draft = draft_course(ctx.engine, brief, ctx.progress, cancel=ctx.cancel)

    def save(w: sqlite_utils.Database) -> int:
        ensure_identity(w, p.get("identifier"), p.get("clientIdentifier"))
        return courses.create(w, title=draft.title, description=draft.description, content=draft.content,
                              identifier=p.get("identifier"), client_identifier=p.get("clientIdentifier"))

    course_id = ctx.db.write(save)
    return {"courseId": course_id, "flags": [f.to_wire() for f in draft.flags], "regenerated": draft.regenerated,
            **after_course(ctx, course_id)}



def _course_context(ctx: JobContext, course_id: int) -> tuple[dict[str, Any], str]:
    row = fetch_one(ctx.db.read(), "SELECT * FROM courses WHERE id = ?", [course_id])
    if row is None or row["deleted"] is not None:
        raise not_found("Course")
    return json.loads(row["draft"]), f"{row['title']}: {row['description']}"


def _append(ctx: JobContext, course_id: int, screen: dict[str, Any]) -> dict[str, Any]:
    def save(w: sqlite_utils.Database) -> None:
        row = courses.get_row(w, course_id)
        content = json.loads(row["draft"])
        screen["id"] = max((s.get("id", 0) for s in content["screens"]), default=0) + 1
        content["screens"].append(screen)
        courses.save_draft(w, course_id, content)

    ctx.db.write(save)
    return {"courseId": course_id, "screenId": screen["id"]}


@handler("generate_screen")
def run_generate_screen(ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    _content, context = _course_context(ctx, p["courseId"])
    title = p.get("title") or (p.get("prompt") or "New screen")[:80]
    topic = f"{context}. {p.get('prompt') or ''}".strip()
    screen, flags = through_the_gate(lambda sampling: generate_screen(
        ctx.engine, p["type"], title, topic, source=p.get("content"), cancel=ctx.cancel, sampling=sampling), ctx.retries)
    extra: dict[str, Any] = {"flags": [f.to_wire() for f in flags]}
    for step in SCREEN_STEPS:
        extra.update(step(ctx, p["courseId"], screen))
    ctx.progress(0.9, "screen generated", {"screen": screen})
    return {**_append(ctx, p["courseId"], screen), **extra}


@handler("generate_quiz")
def run_generate_quiz(ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    content, context = _course_context(ctx, p["courseId"])
    source = p.get("content")
    if not source:  # from the course's own content
        source = "\n".join(json.dumps(s.get("content", {}), ensure_ascii=False)[:800] for s in content["screens"])
    topic = f"{context}. {p.get('prompt') or ''}".strip()
    screen, flags = through_the_gate(lambda sampling: generate_quiz(
        ctx.engine, topic, int(p.get("questionCount") or 3), source=source, cancel=ctx.cancel, sampling=sampling),
        ctx.retries)
    ctx.progress(0.9, "quiz generated", {"screen": screen})
    return {**_append(ctx, p["courseId"], screen), "flags": [f.to_wire() for f in flags]}


@handler("translate")
def run_translate(ctx: JobContext) -> dict[str, Any]:
    """Translate a course into a language variant (a course row with `translation_of`), or
    re-sync an existing variant from its source, overwriting it."""
    p = ctx.params
    source_id, language = int(p["courseId"]), str(p["language"])
    content, _context = _course_context(ctx, source_id)
    source_row = courses.get_row(ctx.db.read(), source_id)
    translated, flags = translate_screens(ctx.engine, content["screens"], language, ctx.progress, cancel=ctx.cancel,
                                          retries=ctx.retries)
    variant_content = {**content, "screens": translated}

    def save(w: sqlite_utils.Database) -> int:
        existing = fetch_one(w, "SELECT id FROM courses WHERE translation_of = ? AND language = ?", [source_id, language])
        if existing is not None:
            w.execute("UPDATE courses SET draft = ?, deleted = NULL, updated = ? WHERE id = ?",
                      [json.dumps(variant_content), now_iso(), existing["id"]])
            return int(existing["id"])
        variant = courses.create(
            w, title=source_row["title"], description=source_row["description"], content=variant_content,
            identifier=source_row["identifier"], client_identifier=source_row["client_identifier"],
            theme_id=source_row["theme_id"], language=language, translation_of=source_id,
        )
        w.execute("UPDATE courses SET default_language = 0 WHERE id = ?", [variant])
        return variant

    return {"courseId": source_id, "variantId": ctx.db.write(save), "language": language,
            "flags": [f.to_wire() for f in flags]}
