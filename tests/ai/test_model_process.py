"""The model runs in its own process (docs/ai.md, "Model process"): tested on the real server with the
real small model. The server never loads llama.cpp; its API answers while a course is generated; a
request, a job and a cancel cross the process boundary; a second client (as a second server process
would) shares the one model process; killing the model process leaves the API answering, AI routes
answer a clean 503 with Retry-After, and the model process comes back.

The kill test runs last and waits for the restart, so the shared server is whole again afterwards.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from appliance.ai.engine import CancelToken, EngineStatus, SamplingParams
from appliance.ai.errors import QueueFull
from appliance.ai.model_host import address, read_pid, read_secret, run_dir_of
from appliance.ai.process import read_frame, send
from appliance.ai.process_engine import ProcessEngine
from appliance.ai.schema import validate
from tests.ai.conftest import requires_model
from tests.helpers import Install, Server

pytestmark = requires_model

NAME_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 24}},
    "required": ["name"],
    "additionalProperties": False,
}
RATING_SCHEMA = {
    "type": "object",
    "properties": {"stars": {"type": "integer", "minimum": 1, "maximum": 5}, "liked": {"type": "boolean"}},
    "required": ["stars", "liked"],
    "additionalProperties": False,
}
MESSAGES = [{"role": "user", "content": "Name a fruit and rate it. Answer in JSON."}]
COURSE = {"prompt": "Workplace fire safety for warehouse staff", "screenCount": 3}


def model_info(data_dir: Path) -> dict[str, Any]:
    """The model process's own info, asked over its socket with its secret (as a server does)."""
    run_dir = run_dir_of(data_dir)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(address(run_dir))
        send(sock, {"op": "info", "secret": read_secret(run_dir)})
        msg = read_frame(sock.makefile("rb"))
    assert msg is not None and msg["op"] == "info", msg
    info: dict[str, Any] = msg["info"]
    return info


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


def start_course_job(client: httpx.Client) -> int:
    r = client.post("/v1/headless/generate/course", json=COURSE, headers={"Prefer": "respond-async"})
    assert r.status_code == 202, r.text
    return int(r.json()["id"])


def job(client: httpx.Client, job_id: int) -> dict[str, Any]:
    r = client.get(f"/v1/headless/jobs/{job_id}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def running(data_dir: Path) -> int:
    return int(model_info(data_dir)["running"])


@pytest.fixture()
def api(server: Server, install: Install) -> Iterator[httpx.Client]:
    with server.client(install.test_key, timeout=60) as client:
        yield client


@pytest.fixture()
def second_client(install: Install) -> Iterator[ProcessEngine]:
    """A client of the server's model process from another process (this one), as a second server
    process is: the lock is the server's, so this one only connects."""
    engine = ProcessEngine(run_dir_of(install.data_dir), {}, timeout=120)
    assert engine.wait_ready(60) == EngineStatus.READY, engine.info()
    yield engine
    engine.close()


def test_the_server_never_loads_llama_cpp(server: Server, install: Install) -> None:
    pid = read_pid(run_dir_of(install.data_dir))
    assert pid is not None and pid != server.process.pid
    assert "libllama" in Path(f"/proc/{pid}/maps").read_text()
    assert "libllama" not in Path(f"/proc/{server.process.pid}/maps").read_text()
    assert model_info(install.data_dir)["status"] == "ready"


def test_the_api_answers_while_a_course_is_generated(api: httpx.Client, install: Install) -> None:
    job_id = start_course_job(api)
    try:
        wait_for(lambda: running(install.data_dir) > 0, 60, "the course reached the model")
        times = []
        for _ in range(30):
            started = time.perf_counter()
            r = api.get("/v1/headless/courses")
            times.append(time.perf_counter() - started)
            assert r.status_code == 200, r.text
        assert running(install.data_dir) > 0, "the generation ended before the measurement did"
        # a loose bound: the machine is shared; the model process holds its own GIL
        assert max(times) < 2.0, f"slowest {max(times):.3f} s, median {statistics.median(times):.3f} s"
    finally:
        api.post(f"/v1/headless/jobs/{job_id}/cancel")


def test_a_cancel_crosses_the_process_boundary(api: httpx.Client, install: Install) -> None:
    job_id = start_course_job(api)
    wait_for(lambda: running(install.data_dir) > 0, 60, "the course reached the model")
    r = api.post(f"/v1/headless/jobs/{job_id}/cancel")
    assert r.status_code == 200, r.text
    final = wait_for(lambda: (j := job(api, job_id))["status"] in ("cancelled", "failed", "succeeded") and j,
                     30, "the job ended")
    assert final["status"] == "cancelled", final
    # the model process freed the course's sequences: the cancel reached it
    wait_for(lambda: running(install.data_dir) == 0, 10, "the model process stopped decoding")


def test_a_second_client_shares_the_model_process(second_client: ProcessEngine, install: Install) -> None:
    info = second_client.info()
    assert info["process"]["owner"] is False
    assert info["process"]["pid"] == read_pid(run_dir_of(install.data_dir))
    results: dict[str, Any] = {}

    def ask(name: str, schema: dict[str, Any]) -> None:
        results[name] = second_client.generate_json(MESSAGES, schema, max_tokens=60,
                                                    sampling=SamplingParams(seed=7))

    threads = [threading.Thread(target=ask, args=(n, s)) for n, s in (("name", NAME_SCHEMA), ("rating", RATING_SCHEMA))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    validate(results["name"], NAME_SCHEMA)
    validate(results["rating"], RATING_SCHEMA)


def test_a_stream_and_a_cancel_token_across_the_boundary(second_client: ProcessEngine, install: Install) -> None:
    token = CancelToken()
    chunks = second_client.stream(MESSAGES, max_tokens=400, cancel=token)
    assert next(chunks)
    token.cancel()
    with pytest.raises(Exception) as caught:
        for _ in chunks:
            pass
    assert type(caught.value).__name__ == "Cancelled"
    wait_for(lambda: running(install.data_dir) == 0, 10, "the model process stopped decoding")


def test_a_full_queue_is_busy_with_retry_after(second_client: ProcessEngine, install: Install) -> None:
    streams, refused = [], []
    try:
        for _ in range(24):  # parallel (6) + queue_size (8) and more
            try:
                streams.append(second_client.stream(MESSAGES, max_tokens=300))
            except QueueFull as exc:
                refused.append(exc)
    finally:
        for s in streams:
            s.close()  # type: ignore[attr-defined]
    assert refused, "24 requests at once were all accepted"
    assert all(exc.retry_after >= 1 for exc in refused)
    wait_for(lambda: running(install.data_dir) == 0, 30, "the closed streams were cancelled")


def test_killing_the_model_process_leaves_the_api_answering(
    api: httpx.Client, install: Install, server: Server
) -> None:
    run_dir = run_dir_of(install.data_dir)
    old = read_pid(run_dir)
    assert old is not None
    job_id = start_course_job(api)  # a job in flight at the kill
    waiting: dict[str, Any] = {}

    def wait_for_course() -> None:  # a request in flight at the kill (the route waits for its job)
        started = time.monotonic()
        waiting["response"] = api.post("/v1/headless/generate/course", json=COURSE, timeout=120)
        waiting["seconds"] = time.monotonic() - started

    blocked = threading.Thread(target=wait_for_course)
    blocked.start()
    wait_for(lambda: running(install.data_dir) >= 2, 60, "both courses reached the model")
    os.kill(old, signal.SIGKILL)

    blocked.join(30)
    assert not blocked.is_alive(), "the request in flight hung after the kill"
    response: httpx.Response = waiting["response"]
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["statusCode"] == 503 and "retry" in response.json()["message"]
    final = wait_for(lambda: (j := job(api, job_id))["status"] != "running" and j, 30, "the job ended")
    assert final["status"] == "failed" and final["error"] == "No AI engine is available right now; retry shortly"

    # the API answers at once; AI routes refuse cleanly until the model process is back
    started = time.monotonic()
    assert api.get("/v1/headless/courses").status_code == 200
    assert time.monotonic() - started < 2.0
    refused = api.post("/v1/headless/generate/refine", json={"text": "A short text.", "operation": "fix_grammar"})
    assert refused.status_code == 503, refused.text
    assert int(refused.headers["retry-after"]) >= 1 and refused.json()["code"] == "SERVICE_UNAVAILABLE"
    health = httpx.get(f"{server.url}/health", headers={"Authorization": f"Bearer {install.metrics_token}"})
    assert health.status_code == 200 and health.json()["checks"]["ai"] == "unavailable", health.text

    # restarted: a new model process, the health check says ready, a request is answered
    def back() -> bool:
        body = httpx.get(f"{server.url}/health", headers={"Authorization": f"Bearer {install.metrics_token}"}).json()
        return bool(body["checks"]["ai"] == "ready")

    wait_for(back, 90, "the model process came back")
    new = read_pid(run_dir)
    assert new is not None and new != old
    # an AI route answers again (this text's refine fits its token budget with the small model)
    r = api.post("/v1/headless/generate/refine", json={"text": "The cat sat on the mat.", "operation": "fix_grammar"},
                 timeout=180)
    assert r.status_code == 200 and r.json()["text"], r.text
    assert "ai model process stopped" in server.log()


def test_workers_share_the_supervisors_model_process(fresh_install: Install) -> None:
    """`serve --workers 2`: one model process, the supervisor's child; a worker killed and started again
    leaves it running, and the workers reach it."""
    from tests.helpers import start_server
    from tests.server.test_workers import worker_pids

    server = start_server(fresh_install.data_dir, "--workers", "2")
    try:
        run_dir = run_dir_of(fresh_install.data_dir)
        model = read_pid(run_dir)
        assert model is not None
        assert _parent(Path(f"/proc/{model}")) == server.process.pid
        workers = worker_pids(server)
        assert len(workers) == 2
        ours = {server.process.pid, *workers}
        hosts = [int(p.name) for p in Path("/proc").iterdir()
                 if p.name.isdigit() and b"appliance.ai.process" in _cmdline(p) and _parent(p) in ours]
        assert hosts == [model]  # one model process in all: none of the workers started its own
        os.kill(workers[0], signal.SIGKILL)
        wait_for(lambda: len(worker_pids(server)) == 2 and workers[0] not in worker_pids(server), 60,
                 "the worker was started again")
        assert read_pid(run_dir) == model and Path(f"/proc/{model}").exists()
        assert model_info(fresh_install.data_dir)["status"] == "ready"
        with server.client(fresh_install.test_key, timeout=120) as client:
            r = client.post("/v1/headless/generate/refine", json={"text": "The cat sat on the mat.",
                                                                  "operation": "fix_grammar"})
            assert r.status_code == 200, r.text
    finally:
        server.stop()
    assert not Path(f"/proc/{model}").exists() or b"appliance.ai.process" not in _cmdline(Path(f"/proc/{model}"))


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:  # the process ended while we looked
        return b""


def _parent(proc: Path) -> int:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:  # the process ended while we looked
        return 0
