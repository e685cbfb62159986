"""AI jobs over HTTP, for the headless and the builder routes alike: the server's AI service
(`ai_of`) and the server-sent events of a job's progress (`job_stream`), the one stream behind every
job-events route (the headless `GET /jobs/{id}/events`, the builder's
`GET /embed/api/builder/jobs/{id}/events`).

Each event is one JSON object on a `data:` line: first `{"type": "state", "job": ...}`, then the
job's own events as `AIService` publishes them (`progress`, with each generated screen in `data`),
and last the final one (`succeeded`, `failed` or `cancelled`, with the job). A job that has already
ended (or ran before a restart) gets its final event alone. While nothing happens, a
`{"type": "ping"}` is sent every PING_SECONDS: a course can wait minutes in the model's queue, and a
connection that carries nothing that long is closed by proxies and by browsers' idle timeouts.

With `serve --workers N` the job may run in another worker: its events are then read from the
environment's `job_events` (written by AIService), polled every FOLLOW_SECONDS with a look at
`PRAGMA data_version` that reads no page, so an idle follower costs next to nothing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from litestar import Request
from litestar.response import ServerSentEvent

from appliance.ai.jobs import FINAL, AIService
from appliance.errors import ApiError

PING_SECONDS = 15.0
FOLLOW_SECONDS = 0.1  # a follower on another worker than the job's looks this often for news


def ai_of(request: Request[Any, Any, Any]) -> AIService:
    """The server's AI service; 503 when it is not running (no model configured, or AI turned off)."""
    service: AIService | None = getattr(request.app.state, "ai", None)
    if service is None:
        raise ApiError(503, "The AI service is not running on this server")
    return service


async def job_events(
    current: dict[str, Any] | None,
    queue: asyncio.Queue[dict[str, Any]] | None,
    ping_seconds: float = PING_SECONDS,
) -> AsyncIterator[str]:
    """The events of a job whose row is `current`, read from `queue` (AIService.listen; None when
    the job is no longer running), until its final event."""
    if queue is None or current is None or current["status"] in FINAL:
        yield json.dumps({"type": current["status"] if current else "unknown", "job": current})
        return
    yield json.dumps({"type": "state", "job": current})
    while True:
        try:
            event = await asyncio.wait_for(queue.get(), timeout=ping_seconds)
        except TimeoutError:
            yield json.dumps({"type": "ping"})
            continue
        yield json.dumps(event)
        if event["type"] in FINAL:
            return


async def remote_job_events(
    service: AIService,
    key: tuple[int, str, int],
    current: dict[str, Any],
    after: int,
    ping_seconds: float = PING_SECONDS,
) -> AsyncIterator[str]:
    """The events of a job running in another worker process, from its recorded events after
    event id `after`, until its final event."""
    yield json.dumps({"type": "state", "job": current})
    seen: tuple[Any, int] | None = None
    quiet = 0.0
    while True:
        version = service.data_version(key[0], key[1])
        if version != seen:
            seen = version
            events, final = service.events_after(*key, after)
            for number, event in events:
                after, quiet = number, 0.0
                yield json.dumps(event)
            if final is not None:
                yield json.dumps({"type": final["status"], "job": final})
                return
        if quiet >= ping_seconds:
            quiet = 0.0
            yield json.dumps({"type": "ping"})
        await asyncio.sleep(FOLLOW_SECONDS)
        quiet += FOLLOW_SECONDS


def job_stream(service: AIService, workspace_id: int, environment: str, job_id: int) -> ServerSentEvent:
    """The response of a job-events route, for a job the caller may follow (checked by the route)."""
    # listen first, then read the row: an event published in between is queued, never lost, and a
    # job that ended in between is read as ended. For a job of another worker, the newest event
    # id is read before the row, for the same reason.
    queue = service.listen(workspace_id, environment, job_id)
    after = service.last_event(workspace_id, environment) if queue is None else 0
    current = service.get(workspace_id, environment, job_id)
    if queue is None and current is not None and current["status"] not in FINAL:
        return ServerSentEvent(remote_job_events(service, (workspace_id, environment, job_id), current, after))
    return ServerSentEvent(job_events(current, queue))
