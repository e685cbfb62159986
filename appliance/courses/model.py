"""Course content model and its wire shape (the cloud's course content, as the headless routes answer it).

A course row keeps its editable draft as JSON (`{start, finish, screens}`) and the content of its
last published revision separately. Screens carry a `type` name from SCREEN_TYPES and a `content`
object whose shape depends on the type; the wire form adds the cloud's type object and display
settings. Content shapes (text fields are plain text unless named `html`, which is sanitised HTML):

    text        {"html": "<p>...</p>"}
    process     {"steps": [{"title": str, "description": str}, ...]}
    checklist   {"items": [{"title": str, "description"?: str}, ...]}
    flashcards  {"cards": [{"front": str, "back": str}, ...]}
    list        {"items": [{"title": str, "description"?: str}, ...]}
    quiz        {"questions": [{"id": int, "question": str,
                                "answers": [{"id": int, "text": str, "correct": bool}, ...],
                                "feedback": {"correct": str, "incorrect": str}}, ...]}
                plus screen fields "scored": true and "passing_grade": 0-100
    media       {"url": str, "alt": str, "caption"?: str}

Every screen also has "id" (unique in the course), "type", "title" and optional "description" and
"objective" (the learning objective it serves, for generated courses).
"""

from __future__ import annotations

import json
import secrets
from typing import Any

SCREEN_TYPES: dict[str, dict[str, Any]] = {
    name: {"id": i, "name": name, "title": title, "icon": icon, "premium": False, "completable": completable}
    for i, (name, title, icon, completable) in enumerate(
        [
            ("text", "Text", "text", 0),
            ("process", "Process", "process", 0),
            ("checklist", "Checklist", "checklist", 1),
            ("flashcards", "Flashcards", "flashcards", 1),
            ("list", "List", "list", 0),
            ("quiz", "Quiz", "quiz", 1),
            ("media", "Media", "media", 0),
        ],
        start=1,
    )
}

DEFAULT_START: dict[str, Any] = {
    "button_label": "Start",
    "button_style": "filled",
    "display_button": True,
    "display_description": True,
    "display_duration": True,
    "display_pattern": True,
    "drag_index": 0,
    "finish": False,
    "layout": "cover",
    "legacy": False,
    "link_type": None,
    "mode": "light",
    "overlay": False,
    "start": True,
    "text_alignment": "left",
    "text_colour": None,
    "title_size": "large",
}

DEFAULT_FINISH: dict[str, Any] = {
    "title": "Well done!",
    "description": "You have finished this course.",
    "bg_colour": None,
    "title_colour": None,
    "button_label": "Finish",
    "button_style": "filled",
    "confetti_style": "default",
    "display_button": True,
    "display_confetti": True,
    "display_description": True,
    "display_feedback": False,
    "display_pattern": True,
    "display_title": True,
    "finish": True,
    "layout": "cover",
    "legacy": False,
    "link_type": None,
    "link_url": None,
    "mode": "light",
    "overlay": False,
    "text_alignment": "center",
}

SCREEN_OBJECT_DEFAULTS: dict[str, Any] = {
    "display_button": True,
    "display_description": True,
    "display_duration": False,
    "display_title": True,
    "drag_index": 0,
    "layout": "default",
    "legacy": False,
    "mode": "light",
    "text_alignment": "left",
}


def new_course_key() -> str:
    return secrets.token_urlsafe(12)


def empty_content() -> dict[str, Any]:
    return {"start": dict(DEFAULT_START), "finish": dict(DEFAULT_FINISH), "screens": []}


def screen_to_wire(screen: dict[str, Any], sequence: int) -> dict[str, Any]:
    kind = SCREEN_TYPES[screen["type"]]
    questions = screen.get("content", {}).get("questions", []) if screen["type"] == "quiz" else []
    return {
        "id": screen["id"],
        "title": screen.get("title", ""),
        "description": screen.get("description", ""),
        "asset": screen.get("asset", ""),
        "sequence": sequence,
        "scored": bool(screen.get("scored", screen["type"] == "quiz")),
        "passing_grade": screen.get("passing_grade", 0),
        "questions": questions,
        "object": {**SCREEN_OBJECT_DEFAULTS, **screen.get("object", {})},
        "type": dict(kind),
        "content": screen.get("content", {}),
    }


def course_to_wire(row: dict[str, Any], theme: dict[str, Any] | None = None) -> dict[str, Any]:
    """The course object partners receive, field for field with the cloud's names."""
    content = json.loads(row["draft"])
    return {
        "id": row["id"],
        "title": row["title"],
        "description": row["description"],
        "key": row["key"],
        "image": row["image"],
        "thumbnail": row["thumbnail"],
        "active": bool(row["active"]),
        "identified": bool(row["identified"]),
        "private": bool(row["private"]),
        # cloud course fields with no offline counterpart: no payments, no public share link (every
        # embed needs a signed URL), no e-mail invitations; present so partners' parsers find them
        "paid": False,
        "is_sharable": False,
        "emails": [],
        "identifier": row["identifier"],
        "clientIdentifier": row["client_identifier"],
        "revision": row["revision"],
        "published": row["published"],
        "created": row["created"],
        "updated": row["updated"],
        "deleted": row["deleted"],
        "legacy": bool(row["legacy"]),
        "type": row["type"],
        "theme": theme if theme is not None else [],
        "start": content.get("start", DEFAULT_START),
        "finish": content.get("finish", []),
        "screens": [screen_to_wire(s, i) for i, s in enumerate(content.get("screens", []))],
        "translations": [],
    }
