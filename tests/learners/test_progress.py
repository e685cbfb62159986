"""A learner's progress through a collection."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from appliance.courses import service as courses
from appliance.errors import NotFound
from appliance.learners import progress
from appliance.learners.trackings import record_progress
from appliance.security.audit import now_iso
from appliance.storage.database import Database, fetch_one, last_id


def test_collection_progress_averages_the_courses_in_order(write: Callable[..., Any], db: Database) -> None:
    def setup(w: Any) -> int:
        first = courses.create(w, title="One", content={"screens": []})
        second = courses.create(w, title="Two", content={"screens": []})
        record_progress(w, first, "coll-1", progress_percent=50, seconds=10)
        record_progress(w, second, "coll-1", completed=True, seconds=5)
        now = now_iso()
        collection = last_id(w.execute(
            "INSERT INTO collections (key, title, course_ids, created, updated) VALUES (?, ?, ?, ?, ?)",
            ["coll-key", "Both", json.dumps([second, first, 10**6]), now, now],
        ))
        return last_id(w.execute(
            "INSERT INTO collection_trackings (collection_id, identifier, created, updated) VALUES (?, ?, ?, ?)",
            [collection, "coll-1", now, now],
        ))

    tracking_id = write(setup)
    reader = db.read()
    row = progress.get_collection_tracking(reader, tracking_id)
    got = progress.of_collection_tracking(reader, row)
    assert [c["sequence"] for c in got["courses"]] == [0, 1, 2]
    assert [c["progressPercent"] for c in got["courses"]] == [100, 50, 0]  # no tracking yet counts as 0
    assert got["progressPercent"] == 50 and got["totalTime"] == 15
    assert [r["id"] for r in progress.list_collection_trackings(reader, row["collection_id"], 10, 0)] == [tracking_id]
    with pytest.raises(NotFound, match="Collection tracking not found"):
        progress.get_collection_tracking(reader, 10**9)
    assert fetch_one(reader, "SELECT id FROM collections WHERE id = ?", [row["collection_id"]])
