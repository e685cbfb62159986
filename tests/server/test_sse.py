"""The one job-events stream (appliance/server/sse.py): keep-alive pings while a job is quiet, and,
over HTTP on both routes that use it (headless `GET /jobs/{id}/events`, the builder's
`GET /embed/api/builder/jobs/{id}/events`), each generated screen arriving while the job still runs.
The HTTP tests use the real server and the test model (SmolLM2-135M)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any, TypeVar

import httpx
import pytest

from appliance.server.sse import job_events
from tests.helpers import Install, Server, init_data_dir, run_async, start_server

RUNNING = {"id": 7, "status": "running"}
T = TypeVar("T")


_run = run_async


async def _collect(stream: Any, count: int) -> list[dict[str, Any]]:
    return [json.loads(await asyncio.wait_for(anext(stream), timeout=5)) for _ in range(count)]


def test_a_quiet_job_gets_pings_and_its_events_still_arrive_in_order() -> None:
    async def run() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        stream = job_events(RUNNING, queue, ping_seconds=0.05)
        quiet = await _collect(stream, 3)  # the state, then nothing happens for a while
        queue.put_nowait({"type": "progress", "progress": 0.5, "message": "screen 1 of 2", "data": {"screen": {}}})
        queue.put_nowait({"type": "succeeded", "job": {**RUNNING, "status": "succeeded"}})
        rest = [json.loads(event) async for event in stream]  # ends after the final event
        return quiet, rest

    quiet, rest = _run(run())
    assert [e["type"] for e in quiet] == ["state", "ping", "ping"]
    assert quiet[0]["job"] == RUNNING
    assert [e["type"] for e in rest] == ["progress", "succeeded"]
    assert rest[-1]["job"]["status"] == "succeeded"


def test_an_ended_job_gets_its_final_event_alone() -> None:
    async def run(current: dict[str, Any] | None) -> list[str]:
        return [event async for event in job_events(current, None, ping_seconds=0.05)]

    done = {"id": 7, "status": "failed", "error": "cancelled"}
    assert [json.loads(e) for e in _run(run(done))] == [{"type": "failed", "job": done}]
    assert [json.loads(e) for e in _run(run(None))] == [{"type": "unknown", "job": None}]


# -- over HTTP, both routes ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ai_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Install]]:
    install = init_data_dir(tmp_path_factory.mktemp("sse") / "data")
    server = start_server(install.data_dir)
    yield server, install
    server.stop()


def _screens_while_running(client: httpx.Client, jobs: str, job_id: int) -> list[dict[str, Any]]:
    """Follow a job's events; at the first screen, the job must still be running (it was streamed,
    not sent when the job ended). Returns the events."""
    events: list[dict[str, Any]] = []
    status_at_first_screen = None
    with client.stream("GET", f"{jobs}/{job_id}/events", timeout=600) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if not line.startswith("data:"):
                continue
            events.append(json.loads(line[5:]))
            event = events[-1]
            if status_at_first_screen is None and event["type"] == "progress" and "screen" in (event.get("data") or {}):
                status_at_first_screen = client.get(f"{jobs}/{job_id}").json()["status"]
            if event["type"] in ("succeeded", "failed", "cancelled"):
                break
    assert events[0]["type"] == "state" and events[-1]["type"] == "succeeded", events[-1]
    assert status_at_first_screen == "running", (status_at_first_screen, [e["type"] for e in events])
    return events


def test_headless_job_events_stream_each_screen_before_the_job_ends(ai_server: tuple[Server, Install]) -> None:
    server, install = ai_server
    with server.client(install.test_key) as api:
        started = api.post("/v1/headless/generate/course", json={"prompt": "Safe lifting", "screenCount": 3},
                           headers={"Prefer": "respond-async"})
        assert started.status_code == 202, started.text
        events = _screens_while_running(api, "/v1/headless/jobs", started.json()["id"])
    screens = [e["data"] for e in events if e["type"] == "progress" and "screen" in (e.get("data") or {})]
    assert sorted(s["index"] for s in screens) == [0, 1, 2]


def test_builder_job_events_stream_each_screen_before_the_job_ends(ai_server: tuple[Server, Install]) -> None:
    server, install = ai_server
    with server.client(install.test_key) as api:
        url = api.post("/v1/headless/embed/course",
                       json={"action": "edit", "identifier": "author-sse", "clientIdentifier": "acme"})
        assert url.status_code == 200, url.text
    opened = httpx.post(f"{server.url}/embed/api/session", json={"token": url.text.rsplit("/", 1)[1]}, timeout=30)
    assert opened.status_code == 200, opened.text
    headers = {"Authorization": f"Bearer {opened.json()['session']}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as author:
        started = author.post("/embed/api/builder/ai/course", json={"prompt": "Safe lifting", "screenCount": 3})
        assert started.status_code == 202, started.text
        events = _screens_while_running(author, "/embed/api/builder/jobs", started.json()["id"])
        screens = [e for e in events if e["type"] == "progress" and "screen" in (e.get("data") or {})]
        assert len(screens) == 3
        assert len(author.get("/embed/api/builder/").json()["course"]["screens"]) == 3  # and they were saved
