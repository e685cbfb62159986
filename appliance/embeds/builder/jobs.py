"""The builder's jobs: started by the AI and document routes, followed here (state, server-sent
events, cancel), and a finished document job's course adopted into this course (`apply`)."""

from __future__ import annotations

import json
from typing import Any

import anyio
from litestar import Controller, Request, Response, get, post
from litestar.response import ServerSentEvent

from appliance.embeds.builder import service
from appliance.embeds.builder.access import PATH, answer, builder_session, owned_row
from appliance.embeds.sessions import EmbedSession
from appliance.errors import ApiError
from appliance.server.sse import ai_of, job_stream
from appliance.storage.database import fetch_one


async def submit(
    request: Request[Any, Any, Any], session: EmbedSession, kind: str, params: dict[str, Any]
) -> dict[str, Any]:
    """Start a job for this session's course; answers the job as it is now (202 by the routes)."""
    ai = ai_of(request)
    actor = f"embed-session:{session.session_id}"
    job_id, _future = await anyio.to_thread.run_sync(
        lambda: ai.submit(session.workspace_id, session.environment, kind, params, actor)
    )
    return ai.get(session.workspace_id, session.environment, job_id) or {"id": job_id}


def job_row(session: EmbedSession, job_id: int) -> dict[str, Any]:
    """A job this builder may follow: started by an embed session for its course (or a variant)."""
    row = fetch_one(session.db.read(), "SELECT * FROM jobs WHERE id = ?", [job_id])
    if row is None or not str(row["actor"]).startswith("embed-session:"):
        raise ApiError(404, "Job not found")
    params = json.loads(row["input"])
    own = int(session.claims["course"])
    if own not in (params.get("courseId"), params.get("intoCourse")):
        raise ApiError(404, "Job not found")
    return row


class JobsApi(Controller):
    path = PATH
    include_in_schema = False

    @get("/jobs/{job_id:int}", sync_to_thread=False)
    def job(self, request: Request[Any, Any, Any], job_id: int) -> dict[str, Any]:
        session = builder_session(request)
        job_row(session, job_id)
        job = ai_of(request).get(session.workspace_id, session.environment, job_id)
        assert job is not None  # job_row found it
        return job

    @post("/jobs/{job_id:int}/cancel", status_code=200)
    async def cancel(self, request: Request[Any, Any, Any], job_id: int) -> dict[str, Any]:
        session = builder_session(request)
        job_row(session, job_id)
        ai_of(request).cancel(session.workspace_id, session.environment, job_id)
        return {"id": job_id, "cancelRequested": True}

    @post("/jobs/{job_id:int}/apply", status_code=200)
    async def apply(self, request: Request[Any, Any, Any], job_id: int) -> Response[Any]:
        """A finished document-to-course job made a new course: its screens (with their
        `unsupported` flags) become this course's draft and the interim course is removed."""
        session = builder_session(request)
        row = job_row(session, job_id)
        job = ai_of(request).get(session.workspace_id, session.environment, job_id)
        if job is None or job["status"] != "succeeded" or not isinstance(job["result"], dict):
            raise ApiError(409, "The job has not finished")
        into = int(json.loads(row["input"]).get("intoCourse") or session.claims["course"])
        made = job["result"].get("courseId")
        unsupported = {str(s) for s in job["result"].get("unsupported") or []}
        return answer(await session.db.awrite(
            lambda w: service.adopt_course(
                w, owned_row(w, session, into), int(made) if made is not None else None, unsupported
            )
        ))

    @get("/jobs/{job_id:int}/events")
    async def job_events(self, request: Request[Any, Any, Any], job_id: int) -> ServerSentEvent:
        session = builder_session(request)
        job_row(session, job_id)
        return job_stream(ai_of(request), session.workspace_id, session.environment, job_id)
