"""The builder's draft operations: each runs inside one writer job (a `sqlite_utils.Database` in a
transaction) or on a reader, and knows nothing of HTTP. The routes (draft, ai, jobs) and the
`builder_generate_course` job call them."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import msgspec
import sqlite_utils

from appliance.ai.generation import GENERATED_TYPES
from appliance.courses import service as courses
from appliance.courses.model import DEFAULT_FINISH, DEFAULT_START, SCREEN_TYPES
from appliance.courses.validate import validate_content
from appliance.embeds import player
from appliance.errors import ApiError, not_found
from appliance.security.audit import now_iso
from appliance.storage.database import fetch_all, fetch_one

UNTITLED = "Untitled course"
CONFLICT = (
    "Someone else saved this course while you were editing it. Your changes were not saved: "
    "reload to see their version (copy anything you want to keep first)."
)
SOURCE_CHARS = 20000  # of the course's own content, when a screen or quiz is generated from it


def etag_of(row: dict[str, Any]) -> str:
    """The draft's revision tag: changes whenever what an author edits changes."""
    material = json.dumps(
        [row["draft"], row["title"], row["description"], row["theme_id"]], ensure_ascii=False
    )
    return hashlib.sha256(material.encode()).hexdigest()[:20]


def draft_state(db: sqlite_utils.Database, row: dict[str, Any]) -> dict[str, Any]:
    """What the builder edits: the draft, its revision, the course's variants and the themes."""
    content = json.loads(row["draft"])
    source_id = row["translation_of"] or row["id"]
    variants = [
        {"id": r["id"], "language": r["language"], "published": r["published"], "source": r["translation_of"] is None}
        for r in fetch_all(
            db,
            "SELECT id, language, published, translation_of FROM courses "
            "WHERE (id = ? OR translation_of = ?) AND deleted IS NULL ORDER BY id",
            [source_id, source_id],
        )
    ]
    themes = [
        {"id": t["id"], "name": t["name"], "colours": json.loads(t["colours"]), "font": t["font"]}
        for t in fetch_all(db, "SELECT id, name, colours, font FROM themes ORDER BY id")
    ]
    return {
        "course": {
            "id": row["id"],
            "title": row["title"],
            "description": row["description"],
            "image": row["image"],  # the cover (its alt text: start.image_alt); set by images/cover
            "language": row["language"],
            "themeId": row["theme_id"],
            "translationOf": row["translation_of"],
            "published": row["published"],
            "publishedRevision": row["revision"],
            "hasPublished": row["published_content"] is not None,
            "fresh": row["created"] == row["updated"],
            "start": {**DEFAULT_START, **(content.get("start") or {})},
            "finish": {**DEFAULT_FINISH, **(content.get("finish") or {})},
            "screens": content.get("screens", []),
        },
        "revision": etag_of(row),
        "variants": variants,
        "themes": themes,
        "screenTypes": list(SCREEN_TYPES),
        "generatedTypes": list(GENERATED_TYPES),
    }


def _write(
    w: sqlite_utils.Database, course_id: int, content: dict[str, Any], title: str, description: str, theme_id: int | None
) -> None:
    """The one statement that writes a builder draft (saves and merges alike)."""
    w.execute(
        "UPDATE courses SET draft = ?, title = ?, description = ?, theme_id = ?, updated = ? WHERE id = ?",
        [json.dumps(content), title, description, theme_id, now_iso(), course_id],
    )


def clean_content(content: dict[str, Any]) -> dict[str, Any]:
    """An author's content, through the one validator and sanitiser (a missing or malformed start
    or finish is the default one)."""
    return validate_content(
        {
            "start": content.get("start") if isinstance(content.get("start"), dict) else DEFAULT_START,
            "finish": content.get("finish") if isinstance(content.get("finish"), dict) else DEFAULT_FINISH,
            "screens": content.get("screens", []),
            **({"objectives": content["objectives"]} if isinstance(content.get("objectives"), list) else {}),
        }
    )


def save(
    w: sqlite_utils.Database,
    row: dict[str, Any],
    expected: str,
    content: dict[str, Any],
    title: str | None,
    description: str | None,
    theme_id: int | msgspec.UnsetType | None,
) -> dict[str, Any]:
    """Save the author's draft over `row` if it is still the revision they edited (409 otherwise)."""
    if etag_of(row) != expected:
        raise ApiError(409, CONFLICT)
    if isinstance(theme_id, int) and fetch_one(w, "SELECT id FROM themes WHERE id = ?", [theme_id]) is None:
        raise not_found("Theme")
    _write(
        w,
        row["id"],
        content,
        title.strip() if title is not None else row["title"],
        description if description is not None else row["description"],
        row["theme_id"] if theme_id is msgspec.UNSET else theme_id,
    )
    return draft_state(w, courses.get_row(w, row["id"]))


def publish(w: sqlite_utils.Database, row: dict[str, Any], expected: str | None) -> dict[str, Any]:
    if expected and etag_of(row) != expected:
        raise ApiError(409, CONFLICT)
    courses.publish(w, row["id"])
    return draft_state(w, courses.get_row(w, row["id"]))


def revert(w: sqlite_utils.Database, row: dict[str, Any]) -> dict[str, Any]:
    courses.revert(w, row["id"])
    return draft_state(w, courses.get_row(w, row["id"]))


def unique_titles(kept: list[dict[str, Any]], made: list[dict[str, Any]]) -> None:
    """Number the titles of `made` screens that repeat one of `kept` (or an earlier made one):
    "Hand washing" becomes "Hand washing (2)". Made screens are never appended with a title the
    course already shows (the author could not tell them apart in the outline)."""
    seen = {str(s.get("title") or "").strip().casefold() for s in kept}
    for screen in made:
        base = str(screen.get("title") or "").strip()
        title, n = base, 1
        while title.casefold() in seen:
            n += 1
            title = f"{base} ({n})"
        seen.add(title.casefold())
        screen["title"] = title


def merge_screens(
    w: sqlite_utils.Database,
    course_id: int,
    screens: list[dict[str, Any]],
    title: str,
    description: str,
    objectives: list[Any] | None = None,
    *,
    replace: bool = False,
) -> None:
    """Append made screens (generated, or from a document) to a course's draft, renumbered after its
    own and with unique titles (`unique_titles`), or put them in place of its screens (`replace`).
    A course still untitled takes the made title, and the made description when it has none."""
    row = courses.get_row(w, course_id)
    content = json.loads(row["draft"])
    kept = [] if replace else content.get("screens", [])
    next_id = max((int(s.get("id") or 0) for s in content.get("screens", [])), default=0) + 1
    for offset, screen in enumerate(screens):
        screen["id"] = next_id + offset
    unique_titles(kept, screens)
    merged = validate_content({**content, "screens": [*kept, *screens]})
    if objectives:
        merged["objectives"] = objectives
    fresh = row["title"] in ("", UNTITLED)
    _write(
        w,
        course_id,
        merged,
        title if fresh else row["title"],
        description if fresh and not row["description"] else row["description"],
        row["theme_id"],
    )


def adopt_course(
    w: sqlite_utils.Database, row: dict[str, Any], made_id: int | None, unsupported: set[str]
) -> dict[str, Any]:
    """Move the screens of a course a document job made into `row`'s draft (flagging the ones the
    document does not support) and remove the interim course."""
    if made_id is None or made_id == row["id"]:
        return draft_state(w, row)
    made = courses.get_row(w, made_id)
    screens = json.loads(made["draft"]).get("screens", [])
    for screen in screens:
        if str(screen.get("id")) in unsupported:
            screen["unsupported"] = True
    merge_screens(w, row["id"], screens, made["title"], made["description"])
    w.execute("UPDATE courses SET deleted = ?, updated = ? WHERE id = ?", [now_iso(), now_iso(), made_id])
    return draft_state(w, courses.get_row(w, row["id"]))


def preview(db: sqlite_utils.Database, row: dict[str, Any], theme_id: int | None) -> dict[str, Any]:
    """The saved draft as the player gets a published course (answers kept: the author's own)."""
    content = json.loads(row["draft"])
    screens = content.get("screens", [])
    return {
        "id": row["id"],
        "title": row["title"],
        "description": row["description"],
        "image": row["image"],  # the cover, shown on the start view like the player's
        "language": row["language"],
        "theme": courses.load_theme(db, theme_id if theme_id is not None else row["theme_id"]),
        "start": content.get("start") or DEFAULT_START,
        "finish": content.get("finish") or DEFAULT_FINISH,
        "screens": [player.learner_screen(s, i) for i, s in enumerate(screens)],
        "grading": {str(s.get("id")): s for s in screens if s.get("type") == "quiz"},
    }


def grade(row: dict[str, Any], screen_id: int | str | None, answers: Any) -> dict[str, Any]:
    """Grade a preview attempt like the player's server would (nothing is recorded)."""
    for screen in json.loads(row["draft"]).get("screens", []):
        if str(screen.get("id")) == str(screen_id) and screen.get("type") == "quiz":
            return player.grade(screen, answers)
    return {}


def generation_source(row: dict[str, Any], prompt: str | None, from_course: bool) -> dict[str, Any]:
    """What a screen or quiz is generated from: a prompt, or the course's own content."""
    out: dict[str, Any] = {"prompt": prompt or None}
    if from_course:
        screens = json.loads(row["draft"]).get("screens", [])
        if not screens:
            raise ApiError(422, "The course has no content yet to generate from")
        out["content"] = "\n".join(
            f"{s.get('title', '')}: {json.dumps(s.get('content', {}), ensure_ascii=False)[:800]}" for s in screens
        )[:SOURCE_CHARS]
    elif not prompt:
        raise ApiError(422, "Give a prompt, or generate from the course's own content")
    return out
