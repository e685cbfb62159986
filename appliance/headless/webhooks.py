"""Webhook endpoints (docs/webhooks.md), test deliveries and the delivery log.

Receivers must be on the operator's allowlist (`webhooks.allow_hosts`) and https unless
`webhooks.allow_http`; see docs/webhooks.md. The signing secret is answered once, on creation.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import msgspec
import sqlite_utils
from litestar import Controller, Request, delete, get, post

from appliance.errors import ApiError, not_found
from appliance.headless.common import page_window
from appliance.headless.deps import provide_runtime, set_target
from appliance.storage.database import Database, fetch_all
from appliance.webhooks import outbox
from appliance.webhooks.allow import AllowList, NotAllowed, check_url
from appliance.webhooks.signer import new_secret

MAX_ENDPOINTS = 25
ATTEMPTS_SHOWN = 50


class WebhookInput(msgspec.Struct):
    url: Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
    events: Annotated[list[str], msgspec.Meta(min_length=1, max_length=10)]
    enabled: bool = True


class TestDeliveryInput(msgspec.Struct):
    event: str | None = None


def endpoint_to_wire(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "url": row["url"],
        "events": json.loads(row["events"]),
        "enabled": bool(row["enabled"]),
        "created": row["created"],
        "updated": row["updated"],
    }


def _endpoint(db: sqlite_utils.Database, endpoint_id: int) -> dict[str, Any]:
    rows = fetch_all(db, "SELECT * FROM webhook_endpoints WHERE id = ?", [endpoint_id])
    if not rows:
        raise not_found("Webhook endpoint")
    return rows[0]


def _events(requested: list[str]) -> list[str]:
    unknown = [e for e in requested if e not in outbox.EVENTS]
    if unknown:
        raise ApiError(
            422,
            f"Unknown event(s) {', '.join(sorted(set(unknown)))[:200]}; known: {', '.join(outbox.EVENTS)}",
        )
    return [e for e in outbox.EVENTS if e in requested]


class WebhooksController(Controller):
    tags = ["Webhooks"]

    @get("/webhooks", summary="List webhook endpoints and the events", sync_to_thread=False)
    def list_webhooks(self, db: Database) -> dict[str, Any]:
        rows = fetch_all(db.read(), "SELECT * FROM webhook_endpoints ORDER BY id", [])
        return {"events": list(outbox.EVENTS), "endpoints": [endpoint_to_wire(r) for r in rows]}

    @post("/webhooks", summary="Register a webhook endpoint (the secret is shown once)", status_code=200)
    async def create_webhook(
        self, request: Request[Any, Any, Any], db: Database, data: WebhookInput
    ) -> dict[str, Any]:
        settings = provide_runtime(request).settings.webhooks
        url = data.url.strip()
        events = _events(data.events)
        try:
            allow = AllowList.parse(settings.allow_hosts)
            _, host, port = check_url(url, allow, allow_http=settings.allow_http)
            await asyncio.to_thread(allow.addresses, host, port)
        except NotAllowed as exc:
            raise ApiError(422, str(exc)) from None
        secret = new_secret()

        def job(w: sqlite_utils.Database) -> dict[str, Any]:
            count = w.execute("SELECT count(*) FROM webhook_endpoints").fetchone()[0]
            if count >= MAX_ENDPOINTS:
                raise ApiError(422, f"At most {MAX_ENDPOINTS} webhook endpoints per environment")
            endpoint_id = outbox.insert_endpoint(w, url, events, data.enabled, secret)
            return {**endpoint_to_wire(_endpoint(w, endpoint_id)), "secret": secret}

        created = await db.awrite(job)
        set_target(request, f"webhook:{created['id']}")
        return created

    @delete("/webhooks/{endpoint_id:int}", summary="Delete a webhook endpoint", status_code=200)
    async def delete_webhook(
        self, request: Request[Any, Any, Any], db: Database, endpoint_id: int
    ) -> dict[str, Any]:
        set_target(request, f"webhook:{endpoint_id}")

        def job(w: sqlite_utils.Database) -> dict[str, Any]:
            _endpoint(w, endpoint_id)
            w.execute("DELETE FROM webhook_endpoints WHERE id = ?", [endpoint_id])
            return {"id": endpoint_id, "deleted": True}

        return await db.awrite(job)

    @post("/webhooks/{endpoint_id:int}/test", summary="Send a test delivery", status_code=200)
    async def test_webhook(
        self,
        request: Request[Any, Any, Any],
        db: Database,
        endpoint_id: int,
        data: TestDeliveryInput | None = None,
    ) -> dict[str, Any]:
        set_target(request, f"webhook:{endpoint_id}")
        wanted = data.event if data is not None else None
        if wanted is not None:
            _events([wanted])

        def job(w: sqlite_utils.Database) -> dict[str, Any]:
            endpoint = _endpoint(w, endpoint_id)
            event = wanted or json.loads(endpoint["events"])[0]
            delivery_id = outbox.enqueue_test(w, endpoint_id, event)
            return {"id": delivery_id, "event": event, "test": True, "status": outbox.PENDING}

        queued = await db.awrite(job)
        outbox.wake()
        return queued

    @get("/webhooks/{endpoint_id:int}/deliveries", summary="Recent deliveries", sync_to_thread=False)
    def list_deliveries(
        self,
        request: Request[Any, Any, Any],
        db: Database,
        endpoint_id: int,
        page: int = 0,
        length: int = 100,
    ) -> list[dict[str, Any]]:
        set_target(request, f"webhook:{endpoint_id}")
        limit, offset = page_window(page, length)
        r = db.read()
        _endpoint(r, endpoint_id)
        rows = fetch_all(
            r,
            "SELECT * FROM webhook_outbox WHERE endpoint_id = ? ORDER BY id DESC LIMIT ? OFFSET ?",
            [endpoint_id, limit, offset],
        )
        result = []
        for row in rows:
            attempts = fetch_all(
                r,
                "SELECT time, status_code, error, duration_ms FROM webhook_attempts WHERE outbox_id = ?"
                " ORDER BY id DESC LIMIT ?",
                [row["id"], ATTEMPTS_SHOWN],
            )
            result.append(
                {
                    "id": row["delivery_id"],
                    "event": row["event"],
                    "test": bool(row["test"]),
                    "status": row["status"],
                    "attempts": row["attempts"],
                    "nextAttempt": row["next_attempt"] if row["status"] == outbox.PENDING else None,
                    "lastError": row["last_error"],
                    "created": row["created"],
                    "delivered": row["delivered"],
                    "log": [
                        {
                            "time": a["time"],
                            "statusCode": a["status_code"],
                            "error": a["error"],
                            "durationMs": a["duration_ms"],
                        }
                        for a in reversed(attempts)
                    ],
                }
            )
        return result
