"""Learner events: what a learner just did in the player, published to whoever records it elsewhere.

The player's tracking writes (appliance.embeds.player.track, for the embed and SCORM routes alike)
call `publish_player_event` once per player event, inside the writer job that recorded it. Each
subscriber is called with the job's own `sqlite_utils.Database` and one `LearnerEvent`, in the same
transaction: rows a subscriber writes (an outbox) commit or roll back with the tracking change.

API::

    from appliance.learners import events

    def on_event(w: sqlite_utils.Database, event: events.LearnerEvent) -> None:
        ...  # queue something; no network, no slow work: the learner's request waits

    events.subscribe(on_event)          # idempotent; e.g. at import of the subscribing package
    events.unsubscribe(on_event)

Kinds, in the order one player event publishes them:

- `launched` (player `start`), `progressed` (`progress`), `answered` (`attempt` on a quiz screen:
  `screen` holds the attempt log entry's id, index and type, `score` and `passed` the quiz's result,
  `response` the answers; the attempts the player reports for other screens publish nothing),
- `completed` (`complete`), then `passed` or `failed` when the course has a score (`score` 0-100).

`event_id` is the event's identity, stable when the same thing is reported again (a browser retry,
a second `complete`): `<workspace>/<environment>/<tracking id>/<kind>/<ordinal>`, where the ordinal
is the attempt's number for `answered`, the percent for `progressed`, the tracking's total time at
launch for `launched` and `1` for completed/passed/failed (they happen once per tracking).
Subscribers derive their own ids from it (the xAPI statement id is a uuid5 of it).

A subscriber that raises fails the learner's write (nothing is half-recorded); subscribers must
only write rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from appliance.security.audit import now_iso
from appliance.storage.database import fetch_one

KINDS = ("launched", "progressed", "answered", "completed", "passed", "failed")


@dataclass(frozen=True)
class LearnerEvent:
    kind: str
    event_id: str
    workspace_id: int
    environment: str
    course_id: int
    course_title: str | None
    identifier: str  # the learner (a partner's user identifier, an LMS learner id, lti:...)
    client_identifier: str | None
    tracking_id: int
    occurred: str  # ISO 8601, UTC
    seconds: int  # time the player reported with this event (since its previous one)
    total_seconds: int  # the tracking's total time after this event
    progress: int  # 0-100
    score: float | None = None  # 0-100: the course's score (completed/passed/failed), the quiz's (answered)
    passed: bool | None = None
    screen: dict[str, Any] | None = None
    response: dict[str, Any] | None = field(default=None, hash=False)


Subscriber = Callable[[sqlite_utils.Database, LearnerEvent], None]
_subscribers: list[Subscriber] = []


def subscribe(subscriber: Subscriber) -> None:
    if subscriber not in _subscribers:
        _subscribers.append(subscriber)


def unsubscribe(subscriber: Subscriber) -> None:
    if subscriber in _subscribers:
        _subscribers.remove(subscriber)


def publish(w: sqlite_utils.Database, event: LearnerEvent) -> None:
    for subscriber in list(_subscribers):
        subscriber(w, event)


def _meta(w: sqlite_utils.Database) -> tuple[int, str]:
    meta = dict(w.execute("SELECT k, v FROM app_meta WHERE k IN ('workspace_id', 'environment')").fetchall())
    return int(meta.get("workspace_id", 0)), str(meta.get("environment", ""))


def publish_player_event(
    w: sqlite_utils.Database,
    course_id: int,
    identifier: str,
    player_event: str,
    *,
    seconds: int,
    response: dict[str, Any] | None = None,
) -> list[LearnerEvent]:
    """Publish what one player event (start | progress | attempt | complete) means; returns the events.
    Called after the tracking row was written, so it reads the learner's state from it."""
    if not _subscribers or player_event not in ("start", "progress", "attempt", "complete"):
        return []
    tracking = fetch_one(w, "SELECT * FROM trackings WHERE course_id = ? AND identifier = ?", [course_id, identifier])
    if tracking is None:
        return []
    course = fetch_one(w, "SELECT title FROM courses WHERE id = ?", [course_id]) or {}
    workspace_id, environment = _meta(w)
    attempts: list[dict[str, Any]] = json.loads(tracking["attempts"])
    base: dict[str, Any] = {
        "workspace_id": workspace_id,
        "environment": environment,
        "course_id": course_id,
        "course_title": course.get("title"),
        "identifier": identifier,
        "client_identifier": tracking["client_identifier"],
        "tracking_id": tracking["id"],
        "occurred": now_iso(),
        "seconds": seconds,
        "total_seconds": int(tracking["total_time"]),
        "progress": int(tracking["progress_percent"]),
    }

    def make(kind: str, ordinal: Any, **extra: Any) -> LearnerEvent:
        event_id = f"{workspace_id}/{environment}/{tracking['id']}/{kind}/{ordinal}"
        return LearnerEvent(kind=kind, event_id=event_id, **base, **extra)

    found: list[LearnerEvent] = []
    if player_event == "start":
        found.append(make("launched", int(tracking["total_time"]) - seconds))
    elif player_event == "progress":
        found.append(make("progressed", int(tracking["progress_percent"])))
    elif player_event == "attempt" and attempts and "score" in attempts[-1]:
        # a graded quiz attempt; the player also reports leaving every other screen as an attempt
        last = attempts[-1]
        found.append(
            make(
                "answered",
                len(attempts),
                score=last.get("score"),
                passed=last.get("passed"),
                screen={k: last.get(k) for k in ("screen", "index", "type")},
                response=response,
            )
        )
    elif player_event == "complete":
        score = tracking["score"]
        passed = None if tracking["passed"] is None else bool(tracking["passed"])
        found.append(make("completed", 1, score=score, passed=passed))
        if score is not None and passed is not None:
            found.append(make("passed" if passed else "failed", 1, score=score, passed=passed))
    for event in found:
        publish(w, event)
    return found
