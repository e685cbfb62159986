"""What the embed pages read and write through a session: the published course shaped for the
player (answers withheld), server-side quiz grading, tracking writes through `record_progress`,
and the analytics read models (scoped to the token's client).
"""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from appliance.courses import service as courses
from appliance.courses.model import DEFAULT_FINISH, DEFAULT_START
from appliance.embeds import track_input
from appliance.errors import Conflict, Invalid, not_found
from appliance.learners import events as learner_events
from appliance.learners import trackings
from appliance.learners.trackings import record_progress
from appliance.storage.database import fetch_all, fetch_one

MEDIA_KINDS = {
    "video": (".mp4", ".webm", ".ogv", ".mov"),
    "audio": (".mp3", ".ogg", ".oga", ".wav", ".m4a"),
}


def published_content(row: dict[str, Any]) -> dict[str, Any]:
    if row["published_content"] is None:
        raise Conflict("This course has not been published yet")
    content: dict[str, Any] = json.loads(row["published_content"])
    return content


def _media_kind(content: dict[str, Any]) -> str:
    kind = content.get("kind")
    if kind in ("image", "video", "audio"):
        return str(kind)
    url = str(content.get("url", "")).lower().split("?")[0]
    for name, suffixes in MEDIA_KINDS.items():
        if url.endswith(suffixes):
            return name
    return "image"


def learner_screen(screen: dict[str, Any], index: int) -> dict[str, Any]:
    """A screen as the learner's browser gets it: quiz answers' `correct` flags and feedback stay
    on the server (grading happens there), everything else as published."""
    content = dict(screen.get("content") or {})
    kind = screen.get("type", "text")
    if kind == "quiz":
        questions = []
        for q in content.get("questions", []):
            answers = q.get("answers", [])
            questions.append(
                {
                    "id": q.get("id"),
                    "question": q.get("question", ""),
                    "multiple": sum(1 for a in answers if a.get("correct")) > 1,
                    "answers": [{"id": a.get("id"), "text": a.get("text", "")} for a in answers],
                }
            )
        content = {"questions": questions}
        if "asset_alt" in screen.get("content", {}):
            content["asset_alt"] = screen["content"]["asset_alt"]  # the alt text of the screen's image
    elif kind == "media":
        content = {**content, "kind": _media_kind(content)}
    narration = screen.get("narration")
    return {
        "id": screen.get("id", index + 1),
        "index": index,
        "type": kind,
        "title": screen.get("title", ""),
        "description": screen.get("description", ""),
        "asset": screen.get("asset", ""),
        "scored": bool(screen.get("scored", kind == "quiz")),
        "passing_grade": screen.get("passing_grade", 0),
        "completable": kind in ("checklist", "flashcards", "quiz"),
        "content": content,
        # the clip itself is fetched by screen id over the session (never by object id)
        "narration": {"duration": narration.get("duration"), "voice": narration.get("voice")}
        if isinstance(narration, dict) and narration.get("id") else None,
    }


def played_row(
    db: sqlite_utils.Database, course_id: int, language: str | None, source: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The course row a learner sees: the published language variant the embed's `language` option
    names (exact code, else its primary subtag: fr-CA finds fr), else the variant set as the
    default (POST translation/default), else the course itself. Trackings stay on the course
    itself; their `language` says which variant was played. `source`: the course's row, if read."""
    row = source if source is not None else courses.get_row(db, course_id)
    if row["deleted"] is not None:
        raise not_found("Course")
    variants = fetch_all(
        db,
        "SELECT * FROM courses WHERE translation_of = ? AND deleted IS NULL AND published_content IS NOT NULL "
        "ORDER BY id",
        [course_id],
    )
    if language:
        wanted = language.lower()
        for match in (wanted, wanted.split("-")[0]):
            for candidate in [row, *variants]:
                if str(candidate["language"] or "").lower() == match:
                    return candidate
    return next((v for v in variants if v["default_language"]), row)


def course_for_player(
    db: sqlite_utils.Database, course_id: int, theme_id: int | None, language: str | None = None
) -> dict[str, Any]:
    source = courses.get_row(db, course_id)
    row = played_row(db, course_id, language, source)
    content = published_content(row)
    theme = courses.load_theme(db, theme_id if theme_id is not None else source["theme_id"])
    start = content.get("start") or DEFAULT_START
    finish = content.get("finish") or DEFAULT_FINISH
    return {
        "id": course_id,  # the player tracks the course itself, whichever variant it shows
        "title": row["title"],
        "description": row["description"],
        "image": row["image"],
        "language": row["language"],
        "revision": row["revision"],
        "theme": theme,
        "start": start,
        "finish": finish,
        "screens": [learner_screen(s, i) for i, s in enumerate(content.get("screens", []))],
    }


def tracking_state(
    db: sqlite_utils.Database, course_id: int, identifier: str | None
) -> dict[str, Any] | None:
    if not identifier:
        return None
    row = trackings.find(db, course_id, identifier)
    if row is None:
        return None
    return {
        "id": row["id"],
        "progress": row["progress_percent"],
        "commenced": row["commenced"],
        "completed": row["completed"],
        "score": row["score"],
        "passed": None if row["passed"] is None else bool(row["passed"]),
        "totalTime": row["total_time"],
    }


def _find_screen(content: dict[str, Any], screen_id: Any) -> tuple[int, dict[str, Any]]:
    for i, s in enumerate(content.get("screens", [])):
        if str(s.get("id")) == str(screen_id):
            return i, s
    raise Invalid("screenId is not a screen of this course")


def grade(screen: dict[str, Any], answers: Any) -> dict[str, Any]:
    """Score one quiz screen attempt: percent of questions answered exactly right."""
    if not isinstance(answers, dict):
        raise Invalid("answers must be an object of question id -> [answer ids]")
    questions = (screen.get("content") or {}).get("questions", [])
    results = []
    right = 0
    for q in questions:
        chosen_raw = answers.get(str(q.get("id")), [])
        chosen = {str(a) for a in (chosen_raw if isinstance(chosen_raw, list) else [chosen_raw])}
        correct_ids = {str(a.get("id")) for a in q.get("answers", []) if a.get("correct")}
        ok = bool(chosen) and chosen == correct_ids
        right += ok
        feedback = q.get("feedback") or {}
        results.append(
            {
                "questionId": q.get("id"),
                "correct": ok,
                "correctAnswers": sorted(correct_ids),
                "feedback": feedback.get("correct" if ok else "incorrect", ""),
            }
        )
    score = round(100 * right / len(questions)) if questions else 100
    grade_needed = screen.get("passing_grade", 0) or 0
    return {"score": score, "passed": score >= grade_needed, "passingGrade": grade_needed, "results": results}


def course_score(content: dict[str, Any], attempts: list[dict[str, Any]]) -> tuple[float | None, bool | None]:
    """Average of the best attempt per scored quiz; passed when every scored quiz reached its grade.
    Both stay None until every scored quiz has been attempted."""
    scored = [s for s in content.get("screens", []) if s.get("type") == "quiz" and s.get("scored", True)]
    if not scored:
        return None, None
    best: dict[str, float] = {}
    for a in attempts:
        if "score" in a and a.get("screen") is not None:
            key = str(a["screen"])
            best[key] = max(best.get(key, 0.0), float(a["score"]))
    if any(str(s.get("id")) not in best for s in scored):
        return None, None
    scores = [best[str(s.get("id"))] for s in scored]
    passed = all(best[str(s.get("id"))] >= (s.get("passing_grade", 0) or 0) for s in scored)
    return round(sum(scores) / len(scores), 2), passed


def track(
    db: sqlite_utils.Database,
    course_id: int,
    identifier: str,
    client_identifier: str | None,
    event: str,
    body: dict[str, Any],
    *,
    seconds: int,
    language: str | None,
    name: str | None,
) -> dict[str, Any]:
    """Apply one player event (start | progress | attempt | complete | feedback) to the tracking."""
    checked = track_input.parse({**body, "event": event})  # the learner's browser wrote it: 422 first
    row = played_row(db, course_id, language)  # quizzes are graded against the variant played
    content = published_content(row)
    common: dict[str, Any] = {
        "client_identifier": client_identifier,
        "seconds": seconds,
        "language": row["language"] if row["id"] != course_id else language,
        "name": name,
    }
    result: dict[str, Any] = {}
    if event == "start":
        record_progress(db, course_id, identifier, progress_percent=0, **common)
    elif event == "progress":
        percent = checked.progress or 0.0
        # 100 means completed, which only `complete` records
        record_progress(db, course_id, identifier, progress_percent=min(99, int(percent)), **common)
    elif event == "attempt":
        index, screen = _find_screen(content, checked.screenId)
        attempt: dict[str, Any] = {"screen": screen.get("id"), "index": index, "type": screen.get("type")}
        if screen.get("type") == "quiz":
            result = grade(screen, checked.answers or {})
            attempt.update(score=result["score"], passed=result["passed"])
        fresh, _ = record_progress(db, course_id, identifier, attempt=attempt, **common)
        score, passed = course_score(content, json.loads(fresh["attempts"]))
        if score is not None:
            record_progress(db, course_id, identifier, score=score, passed=passed)
    elif event == "complete":
        fresh, _ = record_progress(db, course_id, identifier, **common)
        score, passed = course_score(content, json.loads(fresh["attempts"]))
        record_progress(db, course_id, identifier, completed=True, score=score, passed=passed)
    elif event == "feedback":
        # a rating 1-5, never free text: nothing a learner types is stored to be shown to others
        record_progress(db, course_id, identifier, feedback=str(checked.feedback), **common)
    # the one place player progress is published (xAPI statements, LTI grade passback subscribe)
    learner_events.publish_player_event(db, course_id, identifier, event, seconds=seconds, response=checked.answers)
    return {"tracking": tracking_state(db, course_id, identifier), **result}


# -- collections ------------------------------------------------------------------------------------
def collection_for_player(
    db: sqlite_utils.Database, collection_id: int, identifier: str | None
) -> dict[str, Any]:
    row = fetch_one(db, "SELECT * FROM collections WHERE id = ?", [collection_id])
    if row is None or row["deleted"] is not None:
        raise not_found("Collection")
    items = []
    for course_id in json.loads(row["course_ids"]):
        course = fetch_one(
            db,
            "SELECT id, title, description, published_content, deleted FROM courses WHERE id = ?",
            [course_id],
        )
        if course is None or course["deleted"] is not None or course["published_content"] is None:
            continue
        screens = json.loads(course["published_content"]).get("screens", [])
        items.append(
            {
                "id": course["id"],
                "title": course["title"],
                "description": course["description"],
                "screens": len(screens),
                "tracking": tracking_state(db, course["id"], identifier),
            }
        )
    return {"id": row["id"], "title": row["title"], "description": row["description"], "courses": items}


def collection_course_ids(db: sqlite_utils.Database, collection_id: int) -> list[int]:
    row = fetch_one(
        db, "SELECT course_ids FROM collections WHERE id = ? AND deleted IS NULL", [collection_id]
    )
    return [int(c) for c in json.loads(row["course_ids"])] if row else []


# -- analytics --------------------------------------------------------------------------------------
def _scope(client: str | None) -> tuple[str, list[Any]]:
    return ("AND t.client_identifier = ?", [client]) if client else ("", [])


def _stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
    scores = [r["score"] for r in rows if r["score"] is not None]
    learners = len(rows)
    completed = sum(1 for r in rows if r["completed"])
    return {
        "learners": learners,
        "commenced": sum(1 for r in rows if r["commenced"]),
        "completed": completed,
        "completionRate": round(100 * completed / learners) if learners else 0,
        "averageProgress": round(sum(r["progress_percent"] for r in rows) / learners) if learners else 0,
        "averageScore": round(sum(scores) / len(scores), 1) if scores else None,
        "passed": sum(1 for r in rows if r["passed"]),
        "totalTime": sum(r["total_time"] for r in rows),
    }


def _histogram(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Learners per progress band (the chart)."""
    bands = [(0, 24), (25, 49), (50, 74), (75, 99), (100, 100)]
    return [
        {
            "label": f"{lo}%" if lo == hi else f"{lo}-{hi}%",
            "count": sum(1 for r in rows if lo <= r["progress_percent"] <= hi),
        }
        for lo, hi in bands
    ]


def _table_row(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "identifier": r["identifier"],
        "name": r["name"],
        "courseId": r["course_id"],
        "progress": r["progress_percent"],
        "score": r["score"],
        "passed": None if r["passed"] is None else bool(r["passed"]),
        "commenced": r["commenced"],
        "completed": r["completed"],
        "totalTime": r["total_time"],
    }


def analytics(db: sqlite_utils.Database, claims: dict[str, Any]) -> dict[str, Any]:
    """Completion, progress and score over trackings, only the token's client's when it names one."""
    kind = str(claims["kind"])
    where, params = _scope(claims.get("clientIdentifier"))
    titles = {r["id"]: r["title"] for r in fetch_all(db, "SELECT id, title FROM courses")}
    if kind == "analytics/course":
        course_id = int(claims["course"])
        rows = fetch_all(
            db,
            f"SELECT t.* FROM trackings t WHERE t.course_id = ? {where} ORDER BY t.id",
            [course_id, *params],
        )
        title = titles.get(course_id, "")
        subject = {"type": "course", "id": course_id, "title": title}
    elif kind == "analytics/collection":
        collection_id = int(claims["collection"])
        ids = collection_course_ids(db, collection_id)
        marks = ",".join("?" * len(ids)) or "NULL"
        rows = fetch_all(
            db,
            f"SELECT t.* FROM trackings t WHERE t.course_id IN ({marks}) {where} ORDER BY t.id",
            [*ids, *params],
        )
        collection = fetch_one(db, "SELECT title FROM collections WHERE id = ?", [collection_id])
        subject = {
            "type": "collection",
            "id": collection_id,
            "title": collection["title"] if collection else "",
        }
    else:
        identifier = claims.get("identifier")
        rows = fetch_all(
            db,
            f"SELECT t.* FROM trackings t WHERE t.identifier = ? {where} ORDER BY t.id",
            [identifier, *params],
        )
        user = fetch_one(db, "SELECT name FROM users WHERE identifier = ?", [identifier])
        subject = {"type": "user", "identifier": identifier, "name": user["name"] if user else None}
    per_course = []
    for course_id in sorted({r["course_id"] for r in rows}):
        subset = [r for r in rows if r["course_id"] == course_id]
        per_course.append({"courseId": course_id, "title": titles.get(course_id, ""), **_stats(subset)})
    return {
        "subject": subject,
        "clientIdentifier": claims.get("clientIdentifier"),
        "stats": _stats(rows),
        "chart": _histogram(rows),
        "courses": per_course,
        "table": [{**_table_row(r), "course": titles.get(r["course_id"], "")} for r in rows[:1000]],
    }
