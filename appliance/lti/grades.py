"""Assignment and Grade Services: a learner's completion goes back to the platform's gradebook.

A resource-link launch whose AGS claim grants the score scope remembers, per course and learner,
where the score goes (`lti_grade_links`). When the player records the learner's completion
(appliance.learners.events publishes `completed` inside that writer transaction), `on_event` queues
one `lti_outbox` row in the same transaction: nothing is lost if the server stops, and the player
never waits for the LMS. `GradeWorker` (started once per data directory with the other background
services) posts due rows through the library's AGS client (`AssignmentsGradesService.put_grade`,
token from the platform's token URL signed with the tool's key), `MAX_ATTEMPTS` times at most with
growing delays; every attempt is audited (actor `lti:ags`), and the last error is kept on the row.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
import sqlite_utils
from pylti1p3.assignments_grades import AssignmentsGradesService
from pylti1p3.exception import LtiException
from pylti1p3.grade import Grade

from appliance import logs
from appliance.learners import events
from appliance.lti import keys, platforms
from appliance.lti.tool import CachedTokenConnector, PlatformRegistration
from appliance.runtime import Runtime
from appliance.security.audit import AuditEvent, now_iso
from appliance.storage.database import Database, StorageError, fetch_all, fetch_one

MAX_ATTEMPTS = 5
BACKOFF = (2, 10, 60, 300)  # seconds before attempts 2, 3, 4, 5
POLL_SECONDS = 5.0
TIMEOUT = 10.0
_wake = threading.Event()


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def remember_link(
    w: sqlite_utils.Database, course_id: int, identifier: str, platform_id: int, sub: str, endpoint: dict[str, Any]
) -> None:
    """Inside the launch's writer job: where this learner's score for this course goes."""
    w.execute(
        """INSERT INTO lti_grade_links (course_id, identifier, platform_id, sub, endpoint, updated)
           VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(course_id, identifier) DO UPDATE SET
           platform_id = excluded.platform_id, sub = excluded.sub, endpoint = excluded.endpoint,
           updated = excluded.updated""",
        [course_id, identifier, platform_id, sub, json.dumps(endpoint)[:8192], now_iso()],
    )


def on_event(w: sqlite_utils.Database, event: events.LearnerEvent) -> None:
    """Learner-event subscriber: a completion of an LTI-launched course queues its grade."""
    if event.kind != "completed" or not event.identifier.startswith("lti:"):
        return
    link = fetch_one(
        w, "SELECT id FROM lti_grade_links WHERE course_id = ? AND identifier = ?", [event.course_id, event.identifier]
    )
    if link is None:
        return
    now = now_iso()
    w.execute(
        "INSERT INTO lti_outbox (link_id, score, completed, next_attempt, created) VALUES (?, ?, ?, ?, ?)",
        [link["id"], event.score, event.occurred, now, now],
    )
    _wake.set()


events.subscribe(on_event)


def _grade(row: dict[str, Any], sub: str) -> Grade:
    score = 100.0 if row["score"] is None else max(0.0, min(100.0, float(row["score"])))
    return (
        Grade()
        .set_score_given(score)
        .set_score_maximum(100)
        .set_activity_progress("Completed")
        .set_grading_progress("FullyGraded")
        .set_timestamp(row["completed"])
        .set_user_id(sub)
    )


def deliver(runtime: Runtime, db: Database, workspace_id: int, environment: str, row: dict[str, Any]) -> str:
    """Post one outbox row; returns the status it now has."""
    link = fetch_one(db.read(), "SELECT * FROM lti_grade_links WHERE id = ?", [row["link_id"]])
    error: str | None = None
    status_code = 0
    try:
        if link is None:
            raise LtiException("the grade link is gone")
        platform = platforms.get(runtime.control, int(link["platform_id"]))
        if platform["workspace_id"] != workspace_id:
            raise LtiException("the platform belongs to another workspace")
        session = requests.Session()
        session.headers["User-Agent"] = "coassemble-appliance-lti"
        session.request = _with_timeout(session.request)  # type: ignore[method-assign]
        connector = CachedTokenConnector(PlatformRegistration(platform, keys.current(runtime.keyring)), session)
        service = AssignmentsGradesService(connector, json.loads(link["endpoint"]))
        service.put_grade(_grade(row, str(link["sub"])))
        status_code = 200
    except (LtiException, requests.RequestException, StorageError, ValueError) as exc:
        response = getattr(exc, "response", None)
        status_code = int(getattr(response, "status_code", 0) or 0)
        error = f"{type(exc).__name__}: {str(exc)[:300]}"
    except Exception as exc:  # the library raises bare exceptions for some platform answers
        error = f"{type(exc).__name__}: {str(exc)[:300]}"
    attempts = int(row["attempts"]) + 1
    if error is None:
        status, next_at = "delivered", row["next_attempt"]
    elif attempts >= MAX_ATTEMPTS:
        status, next_at = "failed", row["next_attempt"]
    else:
        status = "pending"
        next_at = _iso(datetime.now(UTC) + timedelta(seconds=BACKOFF[min(attempts, len(BACKOFF)) - 1]))
    db.write(
        lambda w: w.execute(
            """UPDATE lti_outbox SET status = ?, attempts = ?, next_attempt = ?, last_error = ?,
               delivered = CASE WHEN ? = 'delivered' THEN ? ELSE delivered END WHERE id = ?""",
            [status, attempts, next_at, error, status, now_iso(), row["id"]],
        )
    )
    runtime.audit.record_sync(
        AuditEvent(
            actor="lti:ags",
            method="POST",
            route="lti ags score",
            status=status_code,
            request_id=f"ltiags{row['id']:010d}",
            workspace_id=workspace_id,
            environment=environment,
            target=f"lti-grade:{row['id']}:{status}",
        )
    )
    if error is not None:
        logs.event("lti_grade_failed", outbox=row["id"], attempts=attempts, status=status, error=error)
    return status


def _with_timeout(request: Any) -> Any:
    def call(method: str, url: str, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", TIMEOUT)
        kwargs["allow_redirects"] = False
        return request(method, url, **kwargs)

    return call


def deliver_due(runtime: Runtime) -> int:
    """One pass over every environment's due rows; returns how many were attempted."""
    done = 0
    now = now_iso()
    for workspace_id, environment in runtime.environment_ids():
        try:
            db = runtime.environment(workspace_id, environment)
            due = fetch_all(
                db.read(),
                "SELECT * FROM lti_outbox WHERE status = 'pending' AND next_attempt <= ? ORDER BY id LIMIT 20",
                [now],
            )
        except StorageError:
            continue
        for row in due:
            deliver(runtime, db, workspace_id, environment, row)
            done += 1
    return done


class GradeWorker:
    """The background thread that sends queued grades (one per data directory)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lti-grades", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        _wake.set()
        self._thread.join(timeout=15)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                deliver_due(self.runtime)
            except StorageError as exc:  # a database closing under us at shutdown; the next pass retries
                logs.event("lti_grade_pass_failed", error=str(exc)[:200])
            _wake.wait(POLL_SECONDS)
            _wake.clear()
