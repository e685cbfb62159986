"""Setup status: what a partner needs to check in their first minute, and
the last request of theirs that failed, with a suggested fix (recorded by appliance.server.failures)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get

from appliance.headless.deps import provide_principal
from appliance.headless.usage import IDENTIFIED, allowance_rows
from appliance.storage.database import Database, fetch_one


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
