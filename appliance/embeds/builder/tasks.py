"""The builder's own job kind, `builder_generate_course`: a course generated into the builder's
course rather than into a new one (the headless `generate_course` makes a new course)."""

from __future__ import annotations

from typing import Any

from appliance.ai.course_writer import CourseBrief, draft_course
from appliance.ai.jobs import JobContext, handler
from appliance.embeds.builder import service

KIND = "builder_generate_course"


@handler(KIND)
def run_builder_generate_course(ctx: JobContext) -> dict[str, Any]:
    """Its title and description when the course has none yet, and the screens appended to the
    draft, or replacing its screens when `mode` is "replace" (each reported as soon as it exists,
    through the job's progress events)."""
    p = ctx.params
    brief = CourseBrief(
        prompt=p["prompt"],
        audience=p.get("audience") or "employees",
        familiarity=p.get("familiarity") or "beginner",
        tone=p.get("tone") or "professional",
        screen_count=int(p.get("screenCount") or 5),
        retries=ctx.retries,
    )
    draft = draft_course(ctx.engine, brief, ctx.progress, cancel=ctx.cancel)
    screens = draft.content["screens"]
    course_id = int(p["courseId"])
    ctx.db.write(
        lambda w: service.merge_screens(
            w, course_id, screens, draft.title, draft.description, draft.content.get("objectives"),
            replace=p.get("mode") == "replace",
        )
    )
    return {"courseId": course_id, "screens": len(screens), "flags": [f.to_wire() for f in draft.flags]}
