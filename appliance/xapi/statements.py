"""Learner events as xAPI 1.0.3 statements (docs/xapi.md has the mapping table).

A statement's id is a uuid5 of the learner event's identity (appliance.learners.events), so the
same event reported again (a browser retry, a second `complete`) makes the same statement, and the
outbox keeps one row per endpoint and statement. Activity ids carry the workspace and environment,
so two tenants' courses never share an activity. The actor is an account on the appliance's
public URL, named by the partner's learner identifier (the LRS is the operator's own).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from appliance.learners.events import LearnerEvent

# a fixed namespace: ids must stay the same across restarts, releases and workers
NAMESPACE = uuid.UUID("5b0f3f4e-6c1a-4f7e-9a63-2f3c1d0e7a10")
MAX_STATEMENT_BYTES = 64 * 1024  # a bound LRSs commonly accept for one statement

ADL = "http://adlnet.gov/expapi/verbs/"
VERBS: dict[str, str] = {
    "launched": ADL + "launched",
    "progressed": ADL + "progressed",
    "answered": ADL + "answered",
    "completed": ADL + "completed",
    "passed": ADL + "passed",
    "failed": ADL + "failed",
}
PROGRESS_EXTENSION = "https://w3id.org/xapi/cmi5/result/extensions/progress"
COURSE_TYPE = "http://adlnet.gov/expapi/activities/course"
QUESTION_TYPE = "http://adlnet.gov/expapi/activities/question"


class TooLarge(ValueError):
    """The statement is over MAX_STATEMENT_BYTES: it is refused (recorded, never sent)."""


def statement_id(event: LearnerEvent) -> str:
    return str(uuid.uuid5(NAMESPACE, event.event_id))


def registration(event: LearnerEvent) -> str:
    """One registration per tracking (a learner's enrolment in a course)."""
    return str(uuid.uuid5(NAMESPACE, f"{event.workspace_id}/{event.environment}/{event.tracking_id}"))


def duration(seconds: int) -> str:
    return f"PT{max(0, int(seconds))}S"


def course_activity(base_url: str, event: LearnerEvent) -> dict[str, Any]:
    activity: dict[str, Any] = {
        "objectType": "Activity",
        "id": f"{base_url}/xapi/activities/{event.workspace_id}/{event.environment}/course/{event.course_id}",
        "definition": {"type": COURSE_TYPE},
    }
    if event.course_title:
        activity["definition"]["name"] = {"en": event.course_title}
    return activity


def _score(score: float) -> dict[str, float]:
    value = max(0.0, min(100.0, float(score)))
    return {"scaled": round(value / 100, 4), "raw": value, "min": 0, "max": 100}


def build(event: LearnerEvent, base_url: str) -> dict[str, Any]:
    """The statement for one learner event (`base_url`: the appliance's public URL, no trailing /)."""
    course = course_activity(base_url, event)
    statement: dict[str, Any] = {
        "id": statement_id(event),
        "actor": {"objectType": "Agent", "account": {"homePage": base_url, "name": event.identifier}},
        "verb": {"id": VERBS[event.kind], "display": {"en": event.kind}},
        "object": course,
        "timestamp": event.occurred,
        "context": {"registration": registration(event), "platform": "Coassemble appliance"},
    }
    result: dict[str, Any] = {}
    if event.kind == "progressed":
        result = {"extensions": {PROGRESS_EXTENSION: event.progress}, "duration": duration(event.seconds)}
    elif event.kind == "answered":
        screen = event.screen or {}
        statement["object"] = {
            "objectType": "Activity",
            "id": f"{course['id']}/screen/{screen.get('screen')}",
            "definition": {"type": QUESTION_TYPE},
        }
        statement["context"]["contextActivities"] = {"parent": [course]}
        if event.score is not None:
            result["score"] = _score(event.score)
        if event.passed is not None:
            result["success"] = bool(event.passed)
        if event.response is not None:
            result["response"] = json.dumps(event.response, separators=(",", ":"))
        result["duration"] = duration(event.seconds)
    elif event.kind == "completed":
        result = {"completion": True, "duration": duration(event.total_seconds)}
        if event.score is not None:
            result["score"] = _score(event.score)
    elif event.kind in ("passed", "failed"):
        result = {"success": event.kind == "passed", "duration": duration(event.total_seconds)}
        if event.score is not None:
            result["score"] = _score(event.score)
    if result:
        statement["result"] = result
    return statement


def encode(statement: dict[str, Any]) -> str:
    """The exact body sent; raises TooLarge over MAX_STATEMENT_BYTES."""
    body = json.dumps(statement, separators=(",", ":"), ensure_ascii=False)
    size = len(body.encode())
    if size > MAX_STATEMENT_BYTES:
        raise TooLarge(f"statement is {size} bytes, over the {MAX_STATEMENT_BYTES}-byte limit: refused, not sent")
    return body
