"""Course operations shared by the headless API, the embeds and the AI: all run inside one writer
job (a `sqlite_utils.Database` in a transaction) or on a reader."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from appliance import webhooks
from appliance.courses.model import course_to_wire, new_course_key
from appliance.errors import Conflict, not_found
from appliance.security.audit import now_iso
from appliance.storage.database import fetch_all, fetch_one, last_id


def get_row(db: sqlite_utils.Database, course_id: int) -> dict[str, Any]:
    row = fetch_one(db, "SELECT * FROM courses WHERE id = ?", [course_id])
    if row is None:
        raise not_found("Course")
    return row


def load_theme(db: sqlite_utils.Database, theme_id: int | None) -> dict[str, Any] | None:
    if theme_id is None:
        return None
    row = fetch_one(db, "SELECT preset, font, logo, colours FROM themes WHERE id = ?", [theme_id])
    if row is None:
        return None
    return {
        "preset": row["preset"],
        "font": row["font"],
        "logo": json.loads(row["logo"]),
        "colours": json.loads(row["colours"]),
    }


def to_wire(db: sqlite_utils.Database, row: dict[str, Any]) -> dict[str, Any]:
    wire = course_to_wire(row, load_theme(db, row["theme_id"]))
    wire["translations"] = [
        {"id": r["id"], "language": r["language"]}
        for r in fetch_all(
            db, "SELECT id, language FROM courses WHERE translation_of = ? AND deleted IS NULL", [row["id"]]
        )
    ]
    return wire


def wire(db: sqlite_utils.Database, course_id: int) -> dict[str, Any]:
    return to_wire(db, get_row(db, course_id))


def create(
    db: sqlite_utils.Database,
    *,
    title: str,
    content: dict[str, Any],
    description: str = "",
    identifier: str | None = None,
    client_identifier: str | None = None,
    theme_id: int | None = None,
    language: str = "en",
    translation_of: int | None = None,
) -> int:
    now = now_iso()
    cursor = db.execute(
        """INSERT INTO courses (key, title, description, identifier, client_identifier, theme_id, language,
           translation_of, draft, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [
            new_course_key(),
            title,
            description,
            identifier,
            client_identifier,
            theme_id,
            language,
            translation_of,
            json.dumps(content),
            now,
            now,
        ],
    )
    course_id = last_id(cursor)
    if translation_of is None:  # a language variant is not a new course for partners
        webhooks.emit(db, "course.created", {"course": webhooks.course_summary(get_row(db, course_id))})
    return course_id


def soft_delete(db: sqlite_utils.Database, course_id: int) -> None:
    row = get_row(db, course_id)
    if row["deleted"] is None:
        db.execute(
            "UPDATE courses SET deleted = ?, updated = ? WHERE id = ?", [now_iso(), now_iso(), course_id]
        )


def restore(db: sqlite_utils.Database, course_id: int) -> None:
    row = get_row(db, course_id)
    if row["deleted"] is not None:
        db.execute("UPDATE courses SET deleted = NULL, updated = ? WHERE id = ?", [now_iso(), course_id])


def duplicate(
    db: sqlite_utils.Database, course_id: int, identifier: str | None, client_identifier: str | None
) -> int:
    row = get_row(db, course_id)
    if row["deleted"] is not None:
        raise not_found("Course")
    return create(
        db,
        title=f"{row['title']} (copy)",
        description=row["description"],
        content=json.loads(row["draft"]),
        identifier=identifier if identifier is not None else row["identifier"],
        client_identifier=client_identifier if client_identifier is not None else row["client_identifier"],
        theme_id=row["theme_id"],
        language=row["language"],
    )


def publish(db: sqlite_utils.Database, course_id: int) -> None:
    """The draft becomes the next published revision; learners see published content only."""
    row = get_row(db, course_id)
    if row["deleted"] is not None:
        raise Conflict("A deleted course cannot be published; restore it first")
    now = now_iso()
    db.execute(
        "UPDATE courses SET published_content = draft, published = ?, revision = revision + 1, updated = ? WHERE id = ?",
        [now, now, course_id],
    )


def revert(db: sqlite_utils.Database, course_id: int) -> None:
    row = get_row(db, course_id)
    if row["published_content"] is None:
        raise Conflict("This course has never been published, so there is nothing to revert to")
    db.execute(
        "UPDATE courses SET draft = published_content, updated = ? WHERE id = ?", [now_iso(), course_id]
    )


def save_draft(
    db: sqlite_utils.Database, course_id: int, content: dict[str, Any], title: str | None = None
) -> None:
    row = get_row(db, course_id)
    db.execute(
        "UPDATE courses SET draft = ?, title = ?, updated = ? WHERE id = ?",
        [json.dumps(content), title if title is not None else row["title"], now_iso(), course_id],
    )


def set_cover(db: sqlite_utils.Database, course_id: int, url: str | None, alt: str | None) -> None:
    """The course's cover image (`image`, and `thumbnail`: the same image) and its alt text
    (`content.start.image_alt` in the draft); None removes them."""
    row = get_row(db, course_id)
    content = json.loads(row["draft"])
    start = {**(content.get("start") or {})}
    if alt is None:
        start.pop("image_alt", None)
    else:
        start["image_alt"] = alt
    content["start"] = start
    db.execute("UPDATE courses SET image = ?, thumbnail = ?, draft = ?, updated = ? WHERE id = ?",
               [url, url, json.dumps(content), now_iso(), course_id])


def content_manifest(db: sqlite_utils.Database, course_id: int) -> dict[str, Any]:
    """The course's content per language variant, what a learner-facing player needs to render it."""
    row = get_row(db, course_id)
    variants = [
        row,
        *fetch_all(db, "SELECT * FROM courses WHERE translation_of = ? AND deleted IS NULL", [course_id]),
    ]
    languages = []
    for v in variants:
        content = json.loads(v["published_content"] or v["draft"])
        screens = course_to_wire({**v, "draft": json.dumps(content)})["screens"]
        languages.append(
            {
                "id": v["id"],
                "language": v["language"],
                "default": bool(v["default_language"]) and v is row,
                "revision": v["revision"],
                "published": v["published"],
                "screens": screens,
            }
        )
    assets = sorted({s["asset"] for lang in languages for s in lang["screens"] if s["asset"]})
    return {
        "id": row["id"],
        "key": row["key"],
        "title": row["title"],
        "languages": languages,
        "assets": [{"url": a} for a in assets],
    }
