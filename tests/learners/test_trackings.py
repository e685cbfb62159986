"""record_progress, the one writer of tracking rows, and the tracking queries."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from appliance.courses import service as courses
from appliance.errors import Invalid, NotFound
from appliance.learners import trackings
from appliance.learners.identities import ensure_identity
from appliance.learners.trackings import MAX_ATTEMPTS, TrackingFilter, record_progress
from appliance.storage.database import Database, fetch_all
from tests.learners.conftest import subscribe

DEMO = 1


def test_progress_only_increases_and_time_adds_up(write: Callable[..., Any]) -> None:
    first, events = write(lambda w: record_progress(w, DEMO, "up-1", progress_percent=60, seconds=30))
    assert events == ["course.commenced"] and first["progress_percent"] == 60 and first["commenced"]
    again, events = write(lambda w: record_progress(w, DEMO, "up-1", progress_percent=20, seconds=-5))
    assert events == []
    assert again["progress_percent"] == 60  # never decreases
    assert again["total_time"] == 30  # negative time is ignored
    over, _ = write(lambda w: record_progress(w, DEMO, "up-1", progress_percent=250))
    assert over["progress_percent"] == 100 and over["completed"] is None  # 100 % is not completion


def test_completion_happens_once_and_keeps_the_best_score(write: Callable[..., Any]) -> None:
    write(lambda w: record_progress(w, DEMO, "done-1", score=40, passed=False))
    done, events = write(lambda w: record_progress(w, DEMO, "done-1", completed=True, score=90, passed=True))
    assert events == ["course.completed"]
    assert (done["progress_percent"], done["score"], done["passed"]) == (100, 90, 1)
    later, events = write(lambda w: record_progress(w, DEMO, "done-1", completed=True, score=10, passed=False))
    assert events == [] and later["completed"] == done["completed"]
    assert (later["score"], later["passed"]) == (90, 1)  # a worse retry keeps the best


def test_events_reach_the_outbox_in_the_same_transaction(write: Callable[..., Any], db: Database) -> None:
    write(lambda w: subscribe(w, ["course.commenced", "course.completed"]))
    write(lambda w: record_progress(w, DEMO, "hooked-1", completed=True))
    rows = [
        (r["event"], json.loads(r["body"]))
        for r in fetch_all(db.read(), "SELECT event, body FROM webhook_outbox ORDER BY id")
        if json.loads(r["body"])["data"]["tracking"]["identifier"] == "hooked-1"
    ]
    assert [event for event, _ in rows] == ["course.commenced", "course.completed"]
    bodies = [body for _, body in rows]
    assert bodies[0]["data"]["course"]["id"] == DEMO

    def rolled_back(w: Any) -> None:
        record_progress(w, DEMO, "hooked-2")
        raise RuntimeError("the caller's job fails after recording")

    with pytest.raises(RuntimeError):
        write(rolled_back)
    assert trackings.find(db.read(), DEMO, "hooked-2") is None
    assert not [r for r in fetch_all(db.read(), "SELECT body FROM webhook_outbox") if "hooked-2" in r["body"]]


def test_the_attempt_log_keeps_the_latest(write: Callable[..., Any]) -> None:
    def many(w: Any) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for i in range(MAX_ATTEMPTS + 3):
            row, _ = record_progress(w, DEMO, "tries-1", attempt={"screen": 1, "n": i})
        return row

    attempts = json.loads(write(many)["attempts"])
    assert len(attempts) == MAX_ATTEMPTS and attempts[-1]["n"] == MAX_ATTEMPTS + 2 and attempts[0]["n"] == 3


def test_listing_filters_and_refusals(write: Callable[..., Any], db: Database) -> None:
    def setup(w: Any) -> None:
        record_progress(w, DEMO, "list-a", client_identifier="list-acme")
        record_progress(w, DEMO, "list-b", client_identifier="list-acme", completed=True)
        record_progress(w, DEMO, "list-c", client_identifier="list-globex")

    write(setup)
    reader = db.read()
    acme = trackings.list_for_course(reader, TrackingFilter(DEMO, client_identifier="list-acme"), 100, 0)
    assert [r["identifier"] for r in acme] == ["list-a", "list-b"]
    done = trackings.list_for_course(reader, TrackingFilter(DEMO, client_identifier="list-acme", completed=True), 100, 0)
    assert [r["identifier"] for r in done] == ["list-b"]
    assert trackings.list_for_course(reader, TrackingFilter(DEMO, start="2999-01-01T00:00:00Z"), 100, 0) == []
    with pytest.raises(Invalid, match="start must be an ISO 8601 date"):
        trackings.list_for_course(reader, TrackingFilter(DEMO, start="yesterday"), 100, 0)
    with pytest.raises(NotFound, match="Tracking not found"):
        trackings.get(reader, 10**9)
    with pytest.raises(NotFound, match="Tracking not found"):
        write(lambda w: trackings.delete(w, DEMO, "nobody-at-all"))
    write(lambda w: trackings.delete(w, DEMO, "list-c"))
    assert trackings.find(db.read(), DEMO, "list-c") is None


def test_a_learner_summary(write: Callable[..., Any], db: Database) -> None:
    def setup(w: Any) -> None:
        other = courses.create(w, title="Second", content={"screens": []})
        ensure_identity(w, "sum-1", "sum-client", name="Sum")
        record_progress(w, DEMO, "sum-1", progress_percent=50, seconds=10, score=60)
        record_progress(w, other, "sum-1", completed=True, seconds=20, score=81)
        record_progress(w, DEMO, "scorm:sum-2", scorm=True)  # SCORM learners have no user row

    write(setup)
    learner = trackings.of_learner(db.read(), "sum-1")
    assert learner.user is not None and learner.user["name"] == "Sum"
    assert learner.totals == {
        "courses": 2, "commenced": 2, "completed": 1, "totalTime": 30, "averageProgress": 75, "averageScore": 70.5,
    }
    scorm_only = trackings.of_learner(db.read(), "scorm:sum-2")
    assert scorm_only.user is None and scorm_only.totals["courses"] == 1  # known by trackings alone
    with pytest.raises(NotFound, match="User not found"):
        trackings.of_learner(db.read(), "never-seen")
