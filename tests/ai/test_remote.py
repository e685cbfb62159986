"""RemotePool against REAL OpenAI-compatible servers: llama-cpp-python's server (``llama_cpp.server``)
on SmolLM2, started as separate processes on 127.0.0.1. Kill one mid-run: failover; kill both:
clear error; restart: recovery through the half-open circuit breaker.

The server needs extra packages (fastapi, uvicorn, sse-starlette, starlette-context,
pydantic-settings). They are looked up in ``$APPLIANCE_AI_SERVER_PYTHON``, else
``$APPLIANCE_AI_SERVER_VENV/bin/python`` (default ``~/.cache/appliance/venv-aiserver``; see docs/ai.md), else the running interpreter.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from appliance.ai import EngineUnavailable, SamplingParams
from appliance.ai.remote import CircuitBreaker, RemoteEndpoint, RemotePool
from appliance.ai.schema import validate

from .conftest import COURSE_MESSAGES, COURSE_SCHEMA, QUIZ_SCHEMA_SMALL, model_path, requires_model

REPO = Path(__file__).resolve().parents[2]

MESSAGES = [
    {"role": "user", "content": "Give a short title and one keyword for a course on email safety, as JSON."}
]


def _server_python() -> str:
    env = os.environ.get("APPLIANCE_AI_SERVER_PYTHON")
    if env:
        return env
    side = (
        Path(os.environ.get("APPLIANCE_AI_SERVER_VENV", Path.home() / ".cache/appliance/venv-aiserver"))
        / "bin/python"
    )
    return str(side) if side.exists() else sys.executable


def _has_server_deps(py: str) -> bool:
    r = subprocess.run(
        [py, "-c", "import llama_cpp.server.app, fastapi, sse_starlette, starlette_context"],
        capture_output=True,
    )
    return r.returncode == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return  # already running: never orphan a child
        self.proc = subprocess.Popen(
            [
                _server_python(),
                "-m",
                "llama_cpp.server",
                "--model",
                str(model_path()),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--n_ctx",
                "1024",
                "--n_threads",
                "1",
                "--n_threads_batch",
                "1",
                "--verbose",
                "false",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self.proc.returncode}")
            try:
                if httpx.get(f"{self.url}/v1/models", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("llama_cpp.server did not come up in 60 s")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)  # our own child, by pid
            self.proc.wait(10)
        self.proc = None


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[Server, Server]]:
    if not model_path().is_file():
        pytest.skip("test model missing")
    py = _server_python()
    if not _has_server_deps(py):
        pytest.fail(
            f"llama_cpp.server or its deps are missing in {py}: create the side venv as in docs/ai.md "
            "(build/llama-wheel.sh $V; $V/bin/pip install fastapi==0.165.0 pydantic-settings==2.16.3 "
            "sse-starlette==3.7.0 starlette-context==0.3.6 uvicorn==0.54.0 PyYAML==6.0.4), "
            "or point APPLIANCE_AI_SERVER_PYTHON at an interpreter that has them"
        )
    a, b = Server(_free_port()), Server(_free_port())
    try:
        a.start()
        b.start()
        yield a, b
    finally:
        a.kill()
        b.kill()


def _pool(a: Server, b: Server, **kw: Any) -> RemotePool:
    return RemotePool(
        [RemoteEndpoint(a.url, name="a"), {"url": b.url + "/v1", "name": "b"}],
        failure_threshold=1,
        cooldown=1.0,
        timeout=60,
        connect_timeout=1.0,
        **kw,
    )


@requires_model
def test_failover_error_and_recovery(servers: tuple[Server, Server]) -> None:
    a, b = servers
    pool = _pool(a, b)
    try:
        assert pool.check_health() == {"a": True, "b": True}
        v = pool.generate_json(MESSAGES, QUIZ_SCHEMA_SMALL, max_tokens=200, sampling=SamplingParams(seed=1))
        validate(v, QUIZ_SCHEMA_SMALL)
        assert pool.breakers["a"].state == "closed"

        # primary dies while a request is in flight: the pool fails over to b
        result: dict[str, Any] = {}

        def call() -> None:
            try:
                result["v"] = pool.generate_json(
                    COURSE_MESSAGES, COURSE_SCHEMA, max_tokens=700, sampling=SamplingParams(seed=2)
                )
            except BaseException as exc:
                result["e"] = exc

        t = threading.Thread(target=call)
        t.start()
        time.sleep(1.0)
        a.kill()
        t.join(120)
        assert "e" not in result, result
        validate(result["v"], COURSE_SCHEMA)
        assert pool.breakers["a"].state == "open"  # a failed mid-request
        assert pool.breakers["b"].state == "closed"

        b.kill()  # everything down: a clear error, quickly
        t0 = time.monotonic()
        with pytest.raises(EngineUnavailable, match="no remote AI engine available") as ei:
            pool.generate_json(MESSAGES, QUIZ_SCHEMA_SMALL, max_tokens=50)
        assert time.monotonic() - t0 < 5
        assert ei.value.retry_after >= 1
        assert pool.status().value == "unavailable"

        a.start()  # primary comes back: after the cooldown the half-open trial closes the breaker
        time.sleep(1.1)
        v = pool.generate_json(MESSAGES, QUIZ_SCHEMA_SMALL, max_tokens=200, sampling=SamplingParams(seed=3))
        validate(v, QUIZ_SCHEMA_SMALL)
        assert pool.breakers["a"].state == "closed"
        assert pool.status().value == "ready"
    finally:
        pool.close()
        b.start()  # restore for the other tests


@requires_model
def test_remote_stream_and_health(servers: tuple[Server, Server]) -> None:
    a, b = servers
    if a.proc is None:
        a.start()
    pool = _pool(a, b)
    try:
        chunks = list(pool.stream([{"role": "user", "content": "Say hello."}], max_tokens=20))
        assert len(chunks) >= 2 and "".join(chunks).strip()
        text = "".join(pool.stream(MESSAGES, schema=QUIZ_SCHEMA_SMALL, max_tokens=200))
        import json

        validate(json.loads(text), QUIZ_SCHEMA_SMALL)
    finally:
        pool.close()


@requires_model
def test_kill_mid_stream_is_a_clear_error(servers: tuple[Server, Server]) -> None:
    a, b = servers
    if a.proc is None:
        a.start()
    pool = _pool(a, b)
    try:
        it = pool.stream([{"role": "user", "content": "Write a long story about a dragon."}], max_tokens=600)
        first = [next(it) for _ in range(3)]
        assert first
        a.kill()
        with pytest.raises(EngineUnavailable, match="mid-stream"):
            for _ in it:
                pass
        assert pool.breakers["a"].state == "open"
        # the next stream goes to b at once
        assert "".join(pool.stream([{"role": "user", "content": "Say hi."}], max_tokens=10)).strip()
    finally:
        pool.close()
        a.start()


@requires_model
def test_fallback_to_local_engine(engine: Any) -> None:
    dead = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    pool = RemotePool([dead], failure_threshold=1, cooldown=60, fallback=engine, connect_timeout=0.5)
    try:
        v = pool.generate_json(MESSAGES, QUIZ_SCHEMA_SMALL, max_tokens=200)
        validate(v, QUIZ_SCHEMA_SMALL)
        assert pool.breakers[dead].state == "open"
        assert pool.status().value == "ready"  # served by the fallback
    finally:
        pool.close()


def test_circuit_breaker_states() -> None:
    br = CircuitBreaker(failure_threshold=2, cooldown=10)
    assert br.allow(0)
    br.failure("x", now=0)
    assert br.state == "closed" and br.allow(1)
    br.failure("x", now=1)
    assert br.state == "open" and not br.allow(5)
    assert br.retry_in(5) == pytest.approx(6)
    assert br.allow(11) and br.state == "half_open"
    assert not br.allow(11)  # only one trial at a time
    br.failure("again", now=12)
    assert br.state == "open" and not br.allow(13)
    assert br.allow(22)
    br.release()  # the trial ended without a verdict (cancelled): the next request may try again
    assert br.state == "half_open" and br.allow(23)
    br.success()
    assert br.state == "closed" and br.failures == 0


def test_other_engines_get_the_schema_without_our_grammar_extension() -> None:
    """`x-sentence-after` is for the local grammar; a strict structured-output server never sees it."""
    from appliance.ai.generation import SCREEN_SCHEMAS
    from appliance.ai.grammar import SENTENCE_AFTER

    assert SENTENCE_AFTER in str(SCREEN_SCHEMAS["text"])
    pool = RemotePool(["http://127.0.0.1:9/v1"])
    try:
        for endpoint in pool.endpoints:
            body = pool._body(endpoint, [{"role": "user", "content": "hi"}], SCREEN_SCHEMAS["text"], 10,
                              SamplingParams(), False)
            sent = body["response_format"]["json_schema"]["schema"]
            assert SENTENCE_AFTER not in str(sent)
            assert sent["properties"]["paragraphs"]["items"]["maxLength"] == SCREEN_SCHEMAS["text"]["properties"][
                "paragraphs"]["items"]["maxLength"]
    finally:
        pool.close()
