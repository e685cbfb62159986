"""The last failed request of an environment, with a suggested fix: the server middleware records
headless failures and the embed routes their refusals; `GET /setup/status` (appliance.headless.setup)
shows it to the partner."""

from __future__ import annotations

import sqlite_utils

from appliance.security.audit import now_iso

FIXES = {
    400: "Send a well-formed JSON body with Content-Type: application/json.",
    403: "Your workspace plan does not include this feature; the operator can switch the entitlement on "
    "with `appliance workspace entitlement`.",
    404: "Check the id or path: test and production keys see different data, and ids differ between them.",
    405: "Check the HTTP method for this route in /api/docs.",
    409: "The object is not in a state that allows this; read it again and retry.",
    413: "Send a smaller body.",
    422: "Fix the request parameters or body as the message says.",
    429: "Slow down and retry after the number of seconds in Retry-After.",
}


def record_failure(
    db: sqlite_utils.Database, method: str, route: str, status: int, message: str, fix: str | None = None
) -> None:
    fix = fix or FIXES.get(
        status, "Retry later; if it persists, give the operator the X-Request-Id of the failed call."
    )
    db.execute(
        "INSERT OR REPLACE INTO request_failures (id, time, method, route, status, message, fix) VALUES (1, ?, ?, ?, ?, ?, ?)",
        [now_iso(), method, route, status, message[:500], fix],
    )
