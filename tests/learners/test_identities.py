"""Clients and users: implicit creation, updates, and the row part of hard deletion."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from appliance.courses import service as courses
from appliance.errors import Invalid, NotFound
from appliance.learners import identities
from appliance.learners.identities import ensure_identity
from appliance.learners.trackings import record_progress
from appliance.storage.database import Database, fetch_one

DEMO = 1


def test_ensure_identity_creates_once_and_fills_gaps(write: Callable[..., Any], db: Database) -> None:
    write(lambda w: ensure_identity(w, "id-ann", "id-acme", name="Ann"))
    write(lambda w: ensure_identity(w, "id-ann", "id-globex", email="ann@example.test"))  # a second client
    user = identities.get_user(db.read(), "id-ann")
    assert (user["name"], user["email"], user["client_identifier"]) == ("Ann", "ann@example.test", "id-acme")
    assert identities.user_count(db.read(), "id-acme") == 1
    assert identities.get_client(db.read(), "id-globex")["client_identifier"] == "id-globex"  # created anyway
    write(lambda w: ensure_identity(w, None, None))  # nothing named, nothing made


def test_updates_replace_metadata_and_create_the_client(write: Callable[..., Any], db: Database) -> None:
    write(lambda w: ensure_identity(w, "upd-1", "upd-old", name="Before"))
    row = write(lambda w: identities.update_user(w, "upd-1", client_identifier="upd-new", metadata={"a": 1}))
    assert (row["client_identifier"], json.loads(row["metadata"]), row["name"]) == ("upd-new", {"a": 1}, "Before")
    assert identities.get_client(db.read(), "upd-new")
    client = write(lambda w: identities.update_client(w, "upd-new", {"tier": "gold"}))
    assert json.loads(client["metadata"]) == {"tier": "gold"}
    with pytest.raises(NotFound, match="User not found"):
        write(lambda w: identities.update_user(w, "upd-nobody", name="x"))
    with pytest.raises(NotFound, match="Client not found"):
        write(lambda w: identities.update_client(w, "upd-nobody", None))


def _owner_of(db: Database, course_id: int) -> str | None:
    row = fetch_one(db.read(), "SELECT identifier FROM courses WHERE id = ?", [course_id])
    return None if row is None else row["identifier"]


def test_deleting_a_user_handles_its_courses_by_action(write: Callable[..., Any], db: Database) -> None:
    def setup(w: Any) -> dict[str, int]:
        ensure_identity(w, "del-heir", "del-client")
        made = {}
        for who in ("del-a", "del-b", "del-c"):
            ensure_identity(w, who, "del-client")
            made[who] = courses.create(w, title=who, content={"screens": []}, identifier=who)
            record_progress(w, DEMO, who)
        return made

    made = write(setup)
    with pytest.raises(Invalid, match="action must be one of reallocate, delete, ignore"):
        identities.check_user_action("archive")
    with pytest.raises(Invalid, match="reallocateTo is required"):
        write(lambda w: identities.delete_user_rows(w, "del-a", "reallocate", None))
    with pytest.raises(NotFound, match="User not found"):
        write(lambda w: identities.delete_user_rows(w, "del-a", "reallocate", "del-nobody"))

    write(lambda w: identities.delete_user_rows(w, "del-a", "reallocate", "del-heir"))
    write(lambda w: identities.delete_user_rows(w, "del-b", "delete", None))
    write(lambda w: identities.delete_user_rows(w, "del-c", "ignore", None))
    assert _owner_of(db, made["del-a"]) == "del-heir"
    assert _owner_of(db, made["del-b"]) is None and fetch_one(db.read(), "SELECT id FROM courses WHERE id = ?", [made["del-b"]]) is None
    assert _owner_of(db, made["del-c"]) == "del-c"  # ignored: the course stays as it was
    for who in ("del-a", "del-b", "del-c"):
        assert identities.find_user(db.read(), who) is None
        assert fetch_one(db.read(), "SELECT id FROM trackings WHERE identifier = ?", [who]) is None


def test_deleting_a_client_removes_what_it_owns(write: Callable[..., Any], db: Database) -> None:
    def setup(w: Any) -> int:
        ensure_identity(w, "cli-u", "cli-gone")
        ensure_identity(w, "cli-keep", "cli-stays")
        record_progress(w, DEMO, "cli-u", client_identifier="cli-gone")
        return courses.create(w, title="owned", content={"screens": []}, client_identifier="cli-gone")

    course_id = write(setup)
    write(lambda w: identities.delete_client_rows(w, "cli-gone"))
    reader = db.read()
    assert identities.find_user(reader, "cli-u") is None and identities.find_user(reader, "cli-keep")
    assert fetch_one(reader, "SELECT id FROM courses WHERE id = ?", [course_id]) is None
    assert fetch_one(reader, "SELECT id FROM trackings WHERE identifier = 'cli-u'") is None
    with pytest.raises(NotFound, match="Client not found"):
        identities.get_client(reader, "cli-gone")
