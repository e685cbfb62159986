"""The demo course every new workspace's test environment starts with, so a partner can embed
something in the first minute."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from appliance.courses.model import empty_content, new_course_key
from appliance.security.audit import now_iso
from appliance.storage.database import last_id

DEMO_TITLE = "New starter induction"


def demo_content() -> dict[str, Any]:
    content = empty_content()
    content["screens"] = [
        {
            "id": 1,
            "type": "text",
            "title": "Welcome aboard",
            "content": {"html": "<p>This short course shows you around your first week.</p>"},
        },
        {
            "id": 2,
            "type": "list",
            "title": "Your first day",
            "content": {
                "items": [
                    {"title": "Meet your buddy"},
                    {"title": "Collect your laptop"},
                    {"title": "Read the safety notes"},
                ]
            },
        },
        {
            "id": 3,
            "type": "checklist",
            "title": "Before Friday",
            "content": {"items": [{"title": "Set up your accounts"}, {"title": "Book your induction chat"}]},
        },
        {
            "id": 4,
            "type": "quiz",
            "title": "Quick check",
            "scored": True,
            "passing_grade": 50,
            "content": {
                "questions": [
                    {
                        "id": 1,
                        "question": "Who shows you around on your first day?",
                        "answers": [
                            {"id": 1, "text": "Your buddy", "correct": True},
                            {"id": 2, "text": "Nobody", "correct": False},
                        ],
                        "feedback": {
                            "correct": "Right: your buddy is there for you.",
                            "incorrect": "Your buddy shows you around.",
                        },
                    }
                ]
            },
        },
    ]
    return content


def seed_demo_course(db: sqlite_utils.Database) -> int:
    now = now_iso()
    content = json.dumps(demo_content())
    cursor = db.execute(
        """INSERT INTO courses (key, title, description, revision, draft, published_content, published,
           created, updated) VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?)""",
        [
            new_course_key(),
            DEMO_TITLE,
            "A four-screen demo course to embed straight away.",
            content,
            content,
            now,
            now,
            now,
        ],
    )
    course_id = last_id(cursor)
    db.execute("INSERT OR REPLACE INTO app_meta (k, v) VALUES ('demo_course_id', ?)", [str(course_id)])
    return course_id
