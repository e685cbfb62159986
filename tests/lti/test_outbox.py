"""The AGS outbox in-process on a real encrypted database: a completion of an LTI learner queues its
grade in the player's transaction, a platform that does not answer gets a bounded number of attempts
(each recorded), and a learner's hard deletion removes their grade links and unsent grades."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from appliance import config
from appliance.learners import events, identities
from appliance.lti import grades, platforms
from appliance.runtime import Runtime, open_runtime
from appliance.security.audit import now_iso
from appliance.storage.database import fetch_all
from tests.helpers import Install, free_port, init_data_dir
from tests.lti.conftest import new_rsa, public_jwk

LEARNER = "lti:https://lms.example:learner-9"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    install: Install = init_data_dir(tmp_path_factory.mktemp("lti-outbox") / "data")
    runtime = open_runtime(config.load(install.data_dir))
    runtime.install = install  # type: ignore[attr-defined]
    yield runtime
    runtime.close()


def _event(kind: str, identifier: str = LEARNER) -> events.LearnerEvent:
    return events.LearnerEvent(
        kind=kind, event_id=f"1/test/1/{kind}/1", workspace_id=1, environment="test", course_id=1,
        course_title="Demo", identifier=identifier, client_identifier=None, tracking_id=1, occurred=now_iso(),
        seconds=3, total_seconds=30, progress=100, score=80.0,
    )


def test_completion_queues_a_grade_and_bounded_retries_are_recorded(runtime: Runtime) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: every attempt fails to connect
    platform_id = platforms.add(
        runtime.control, workspace_id=1, environment="test", issuer="https://lms.example", client_id="c9",
        deployment_ids=["d"], auth_login_url=f"{dead}/auth", auth_token_url=f"{dead}/token",
        keyset=json.dumps({"keys": [public_jwk(new_rsa(), "k9")]}),
    )
    db = runtime.environment(1, "test")
    endpoint = {"scope": ["https://purl.imsglobal.org/spec/lti-ags/scope/score"],
                "lineitem": f"{dead}/lineitems/9"}

    def job(w: Any) -> None:
        identities.ensure_identity(w, LEARNER, None)
        grades.remember_link(w, 1, LEARNER, platform_id, "learner-9", endpoint)
        events.publish(w, _event("progressed"))  # not a completion: nothing queued
        events.publish(w, _event("completed", "partner-user-1"))  # not an LTI learner: nothing queued
        events.publish(w, _event("completed"))

    db.write(job)
    rows = fetch_all(db.read(), "SELECT * FROM lti_outbox")
    assert len(rows) == 1 and rows[0]["score"] == 80.0 and rows[0]["status"] == "pending"
    statuses = []
    for _ in range(grades.MAX_ATTEMPTS):
        row = fetch_all(db.read(), "SELECT * FROM lti_outbox")[0]
        statuses.append(grades.deliver(runtime, db, 1, "test", row))
    assert statuses == ["pending"] * (grades.MAX_ATTEMPTS - 1) + ["failed"]
    final = fetch_all(db.read(), "SELECT * FROM lti_outbox")[0]
    assert final["attempts"] == grades.MAX_ATTEMPTS and "ConnectionError" in final["last_error"]
    assert grades.deliver_due(runtime) == 0  # a failed row is never tried again
    audited = fetch_all(runtime.audit.database.read(), "SELECT target FROM audit WHERE actor = 'lti:ags'")
    assert [a["target"] for a in audited][-1] == f"lti-grade:{final['id']}:failed"
    assert len(audited) == grades.MAX_ATTEMPTS


def test_hard_deletion_removes_grade_links_and_unsent_grades(runtime: Runtime) -> None:
    db = runtime.environment(1, "test")
    assert fetch_all(db.read(), "SELECT id FROM lti_grade_links WHERE identifier = ?", [LEARNER])
    db.write(lambda w: identities.delete_user_rows(w, LEARNER, "ignore", None))
    assert not fetch_all(db.read(), "SELECT id FROM lti_grade_links WHERE identifier = ?", [LEARNER])
    assert not fetch_all(db.read(), "SELECT id FROM lti_outbox")
