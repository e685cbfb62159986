"""Setup status (coassemble-api.md §2.9): what a partner needs to check in their first minute, and
the last request of theirs that failed, with a suggested fix."""

from __future__ import annotations

from typing import Any

import sqlite_utils
from litestar import Controller, Request, get

from appliance.headless.deps import provide_principal
from appliance.headless.usage import IDENTIFIED, allowance_rows
from appliance.security.audit import now_iso
from appliance.storage.database import Database, fetch_one

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


class SetupController(Controller):
    tags = ["Setup"]

    @get("/setup/status", summary="Onboarding and diagnostics")
    async def status(self, request: Request[Any, Any, Any], db: Database) -> dict[str, Any]:
        principal = provide_principal(request)
        await db.awrite(lambda w: None)  # the writer is FIFO: failures recorded before this call are in
        reader = db.read()
        meta = fetch_one(reader, "SELECT v FROM app_meta WHERE k = 'demo_course_id'")
        demo_id = int(meta["v"]) if meta else None
        course = (
            fetch_one(reader, "SELECT id, title, published FROM courses WHERE id = ?", [demo_id])
            if demo_id
            else None
        )
        theme = fetch_one(reader, "SELECT id FROM themes ORDER BY id LIMIT 1")
        failure = fetch_one(
            reader, "SELECT time, method, route, status, message, fix FROM request_failures WHERE id = 1"
        )
        identified = next(
            r for r in allowance_rows(reader, principal.environment, None) if r["metric"] == IDENTIFIED
        )
        limit = identified["limit"]
        return {
            "demoCourseId": demo_id,
            "course": course,
            "keyMode": principal.environment,
            "themeId": theme["id"] if theme else None,
            "lastFailure": failure,
            "allowances": {
                "identifiedLearners": {
                    "limit": limit,
                    "used": identified["currentUsage"],
                    "remaining": None
                    if limit is None
                    else max(0, limit + identified["topUp"] - identified["currentUsage"]),
                }
            },
        }
