"""The xAPI outbox: statements become rows in the same transaction as the learner's tracking write.

`on_learner_event` is the learner-event subscriber (appliance.learners.events): for every enabled
LRS endpoint of the environment it queues the event's statement, once (`UNIQUE(endpoint_id,
statement_id)`: the same event reported again adds nothing). The delivery worker
(appliance.xapi.worker) sends due rows. Outcomes (`record_attempt`):

- 2xx: delivered;
- 408, 429, 5xx, no answer: retried with backoff (webhooks' `retry_delay`) for as long as it takes:
  an LRS that is down loses nothing;
- any other 4xx (and a redirect, never followed): failed at once, the status and error recorded;
- a statement over `statements.MAX_STATEMENT_BYTES`: stored as `refused`, never sent.

Endpoints (`add_endpoint`) are refused at configuration time when their URL (or OAuth2 token URL)
is outside the operator's allowlist (`webhooks.allow_hosts`, appliance.webhooks.allow); the worker
checks again on every connection. A learner's hard deletion removes their rows
(appliance.learners.identities), so pending statements about them are never sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlite_utils

from appliance.config import WebhookSettings
from appliance.errors import Invalid, not_found
from appliance.learners.events import LearnerEvent
from appliance.security.audit import now_iso
from appliance.storage.database import fetch_all, fetch_one, last_id
from appliance.webhooks.allow import AllowList, NotAllowed, check_url
from appliance.webhooks.outbox import Wakeup, iso, retry_delay
from appliance.xapi import statements

PENDING, DELIVERED, FAILED, REFUSED = "pending", "delivered", "failed", "refused"
AUTHS = ("basic", "oauth2")
RETRIED_4XX = (408, 429)

_doorbell = Wakeup()
wake = _doorbell.wake  # tell the delivery worker that new rows may be due
wait_for_work = _doorbell.wait_for_work


@dataclass(frozen=True)
class Publisher:
    """The subscriber, bound to the appliance's public URL (the actor's home page, activity ids)."""

    base_url: str

    def __call__(self, w: sqlite_utils.Database, event: LearnerEvent) -> None:
        on_learner_event(w, event, self.base_url)


def on_learner_event(w: sqlite_utils.Database, event: LearnerEvent, base_url: str) -> list[str]:
    """Queue the event's statement for every enabled endpoint; returns the statuses of new rows."""
    endpoints = [row[0] for row in w.execute("SELECT id FROM lrs_endpoints WHERE enabled = 1 ORDER BY id")]
    if not endpoints:
        return []
    statement = statements.build(event, base_url)
    status, error = PENDING, None
    try:
        body = statements.encode(statement)
    except statements.TooLarge as exc:
        # kept (without the answers that made it too large) so the refusal is visible in the log
        status, error = REFUSED, str(exc)
        statement.get("result", {}).pop("response", None)
        body = json.dumps(statement, separators=(",", ":"))
    now = now_iso()
    added: list[str] = []
    for endpoint_id in endpoints:
        cursor = w.execute(
            "INSERT INTO xapi_outbox (statement_id, endpoint_id, identifier, verb, body, status, attempts,"
            " next_attempt, last_error, created) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?)"
            " ON CONFLICT(endpoint_id, statement_id) DO NOTHING",
            [statement["id"], endpoint_id, event.identifier, event.kind, body, status, now, error, now],
        )
        if cursor.rowcount:
            added.append(status)
    if PENDING in added:
        wake()
    return added


# -- endpoints ---------------------------------------------------------------------------------------
def check_destination(url: str, settings: WebhookSettings) -> None:
    """Refuse a URL outside the allowlist now (the worker checks again on every connection)."""
    allow = AllowList.parse(settings.allow_hosts)
    try:
        _, host, port = check_url(url, allow, allow_http=settings.allow_http)
        allow.addresses(host, port)
    except NotAllowed as exc:
        raise Invalid(f"LRS URL refused: {exc}") from None


def add_endpoint(
    w: sqlite_utils.Database,
    settings: WebhookSettings,
    *,
    url: str,
    auth: str,
    username: str,
    secret: str,
    token_url: str | None = None,
    scope: str | None = None,
) -> int:
    if auth not in AUTHS:
        raise Invalid(f"auth must be one of {', '.join(AUTHS)}")
    if not username or not secret:
        raise Invalid("an LRS endpoint needs a user name (or client id) and a password (or client secret)")
    if auth == "oauth2" and not token_url:
        raise Invalid("oauth2 needs --token-url (the LRS's client-credentials token endpoint)")
    url = url.rstrip("/")
    check_destination(url, settings)
    if token_url:
        check_destination(token_url, settings)
    now = now_iso()
    cursor = w.execute(
        "INSERT INTO lrs_endpoints (url, auth, username, secret, token_url, scope, enabled, created, updated)"
        " VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)",
        [url, auth, username, secret, token_url, scope, now, now],
    )
    return last_id(cursor)


def list_endpoints(r: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Endpoints with their queue counts; never the secret."""
    rows = fetch_all(
        r,
        """SELECT e.id, e.url, e.auth, e.username, e.token_url, e.scope, e.enabled, e.created,
           (SELECT count(*) FROM xapi_outbox o WHERE o.endpoint_id = e.id AND o.status = 'pending') AS pending,
           (SELECT count(*) FROM xapi_outbox o WHERE o.endpoint_id = e.id AND o.status = 'delivered') AS delivered,
           (SELECT count(*) FROM xapi_outbox o WHERE o.endpoint_id = e.id AND o.status IN ('failed', 'refused'))
             AS failed
           FROM lrs_endpoints e ORDER BY e.id""",
    )
    return rows


def get_endpoint(r: sqlite_utils.Database, endpoint_id: int) -> dict[str, Any]:
    row = fetch_one(r, "SELECT * FROM lrs_endpoints WHERE id = ?", [endpoint_id])
    if row is None:
        raise not_found("LRS endpoint")
    return row


def remove_endpoint(w: sqlite_utils.Database, endpoint_id: int) -> None:
    get_endpoint(w, endpoint_id)
    w.execute("DELETE FROM lrs_endpoints WHERE id = ?", [endpoint_id])  # its rows cascade away


def delivery_log(r: sqlite_utils.Database, endpoint_id: int, limit: int = 50) -> list[dict[str, Any]]:
    return fetch_all(
        r,
        "SELECT statement_id, verb, status, attempts, last_error, created, delivered FROM xapi_outbox"
        " WHERE endpoint_id = ? ORDER BY id DESC LIMIT ?",
        [endpoint_id, limit],
    )


# -- delivery ----------------------------------------------------------------------------------------
def due_rows(r: sqlite_utils.Database, limit: int) -> list[dict[str, Any]]:
    return fetch_all(
        r,
        "SELECT o.id, o.statement_id, o.body, o.endpoint_id FROM xapi_outbox o"
        " WHERE o.status = 'pending' AND o.next_attempt <= ? ORDER BY o.next_attempt, o.id LIMIT ?",
        [now_iso(), limit],
    )


def record_attempt(
    w: sqlite_utils.Database,
    outbox_id: int,
    *,
    status_code: int | None,
    error: str | None,
    duration_ms: float,
    settings: WebhookSettings,
) -> str | None:
    """Log one attempt and move the row on (delivered, failed or rescheduled); returns its status."""
    row = w.execute("SELECT attempts FROM xapi_outbox WHERE id = ?", [outbox_id]).fetchone()
    if row is None:  # the endpoint or the learner was deleted meanwhile
        return None
    now = now_iso()
    w.execute(
        "INSERT INTO xapi_attempts (outbox_id, time, status_code, error, duration_ms) VALUES (?,?,?,?,?)",
        [outbox_id, now, status_code, error, round(duration_ms, 3)],
    )
    attempts = int(row[0]) + 1
    if error is None and status_code is not None and 200 <= status_code < 300:
        w.execute(
            "UPDATE xapi_outbox SET status = 'delivered', attempts = ?, delivered = ?, last_error = NULL WHERE id = ?",
            [attempts, now, outbox_id],
        )
        return DELIVERED
    message = error or f"HTTP {status_code}"
    if status_code is not None and 300 <= status_code < 500 and status_code not in RETRIED_4XX:
        # the LRS refused this statement: sending it again would be refused again
        w.execute(
            "UPDATE xapi_outbox SET status = 'failed', attempts = ?, last_error = ? WHERE id = ?",
            [attempts, message, outbox_id],
        )
        return FAILED
    due = datetime.now(UTC) + timedelta(
        seconds=retry_delay(attempts, settings.backoff_base_seconds, settings.backoff_max_seconds)
    )
    w.execute(
        "UPDATE xapi_outbox SET attempts = ?, next_attempt = ?, last_error = ? WHERE id = ?",
        [attempts, iso(due), message, outbox_id],
    )
    return PENDING


def prune(w: sqlite_utils.Database, older_than_days: float) -> int:
    """Forget delivered, failed and refused rows (and their attempts) older than the retention period."""
    cutoff = iso(datetime.now(UTC) - timedelta(days=older_than_days))
    cursor = w.execute("DELETE FROM xapi_outbox WHERE status != 'pending' AND created < ?", [cutoff])
    return int(cursor.rowcount or 0)
