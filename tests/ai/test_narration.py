"""Narration end to end: the real piper voice in its side venv run as a child process, a real server
over HTTP, the real encrypted object store (docs/ai.md "Narration").

The voice lives in `~/.cache/appliance/venv-tts` (`make tts-deps`), or wherever
`APPLIANCE_AI_TTS_PYTHON` points; without it these tests FAIL with the install command.
"""

from __future__ import annotations

import array
import io
import json
import math
import os
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from appliance.ai import narration
from appliance.config import AISettings
from appliance.courses.demo import demo_content
from tests.helpers import Install, Server, cli, init_data_dir, start_server

PREFIXES = ("/v1/headless", "/api/v1/headless")


def tts_python() -> Path:
    configured = os.environ.get("APPLIANCE_AI_TTS_PYTHON")
    python = Path(configured) if configured else Path(AISettings().tts_python).expanduser()
    if not python.is_file():
        pytest.fail(f"the narration voice is not installed at {python}: run `make tts-deps`")
    return python


@pytest.fixture(scope="module")
def tts_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Install]]:
    install = init_data_dir(tmp_path_factory.mktemp("narration") / "data")
    server = start_server(install.data_dir, env={"APPLIANCE_AI_TTS_PYTHON": str(tts_python())})
    yield server, install
    server.stop()


def _error(response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"statusCode", "code", "error", "message"} and body["statusCode"] == status
    assert words in body["message"], body


def _wait(c: httpx.Client, job_id: int, prefix: str = "/v1/headless", timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = c.get(f"{prefix}/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def _events(c: httpx.Client, job_id: int) -> list[dict[str, Any]]:
    events = []
    with c.stream("GET", f"/v1/headless/jobs/{job_id}/events", timeout=180) as response:
        for line in response.iter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line[5:]))
                if events[-1]["type"] in ("succeeded", "failed", "cancelled"):
                    break
    return events


def _session(server: Server, c: httpx.Client, **body: Any) -> httpx.Client:
    url = c.post("/v1/headless/embed/course", json=body)
    assert url.status_code == 200, url.text
    opened = httpx.post(f"{server.url}/embed/api/session", json={"token": url.text.rsplit("/", 1)[1]})
    assert opened.status_code == 200, opened.text
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {opened.json()['session']}"},
                        timeout=30)


def _pcm_stats(data: bytes) -> tuple[float, float, int]:
    """(duration seconds, RMS of the 16-bit samples in 0..1, sample rate)."""
    with wave.open(io.BytesIO(data)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)
        rate, frames = wav.getframerate(), wav.readframes(wav.getnframes())
    samples = array.array("h", frames)
    rms = math.sqrt(sum(s * s for s in samples) / max(1, len(samples))) / 32768
    return len(samples) / rate, rms, rate


def _duplicate(c: httpx.Client, course_id: int, client: str | None = None) -> int:
    body = {"identifier": "author-1", **({"clientIdentifier": client} if client else {})}
    made = c.post(f"/v1/headless/course/{course_id}/duplicate", json=body)
    assert made.status_code == 200, made.text
    return int(made.json()["id"])


def test_narration_makes_spoken_encrypted_clips_for_each_screen(tts_server: tuple[Server, Install]) -> None:
    server, install = tts_server
    c = server.client(install.test_key)
    demo = c.get("/v1/headless/setup/status").json()["demoCourseId"]
    course_id = _duplicate(c, demo, client="acme")
    started = c.post(f"/api/v1/headless/courses/{course_id}/narrate", json={})
    assert started.status_code == 202, started.text
    assert started.headers["location"] == f"/api/v1/headless/jobs/{started.json()['id']}"
    t0 = time.monotonic()
    events = _events(c, started.json()["id"])
    elapsed = time.monotonic() - t0
    job = events[-1]["job"]
    assert job["status"] == "succeeded", job
    result = job["result"]
    assert sorted(result["narrated"]) == [1, 2, 3, 4] and result["voice"] == "en_US-joe-medium"
    assert {e["data"]["screenId"] for e in events if e["type"] == "progress" and e.get("data")} == {1, 2, 3, 4}
    print(f"narrated {result['narrationTokens']} characters, {result['seconds']} s of speech in {elapsed:.1f} s")

    # the learner's player gets each clip over its embed session (published content only)
    assert c.post(f"/v1/headless/course/{course_id}/publish").status_code == 200
    learner = _session(server, c, action="view", courseId=course_id, identifier="learner-1", clientIdentifier="acme")
    screens = learner.get("/embed/api/course").json()["course"]["screens"]
    demo_screens = {s["id"]: s for s in demo_content()["screens"]}
    clips = []
    for screen in screens:
        assert screen["narration"]["voice"] == "en_US-joe-medium"
        clip = learner.get(f"/embed/api/course/narration/{screen['id']}")
        assert clip.status_code == 200 and clip.headers["content-type"] == "audio/wav", clip.text
        assert "set-cookie" not in clip.headers
        duration, rms, rate = _pcm_stats(clip.content)
        assert rate == 22050 and rms > 0.01, (screen["id"], rms)
        assert abs(duration - screen["narration"]["duration"]) < 0.05
        words = len(narration.narration_text(demo_screens[screen["id"]]).split())
        assert 0.15 * words < duration < 1.5 * words + 2, (words, duration)  # speech, not noise or silence
        clips.append(clip.content)
    assert result["narrationTokens"] == sum(
        len(narration.narration_text(s)) for s in demo_screens.values()
    )

    # encrypted at rest: neither a WAV header nor a stretch of its samples is in any file
    needles = [clip[:44] for clip in clips] + [clip[4000:4064] for clip in clips]
    for path in install.data_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(n in data for n in needles), path

    # usage: the characters read out count as narration tokens (the workspace's and the client's)
    for route in ("/v1/headless/usage/allowances", "/v1/headless/usage/client/acme"):
        metrics = {m["metric"]: m["currentUsage"] for m in c.get(route).json()}
        assert metrics["narration_tokens"] == result["narrationTokens"] > 0, route
    assert {m["metric"]: m["currentUsage"] for m in c.get("/v1/headless/usage/client/globex").json()}[
        "narration_tokens"] == 0

    # unchanged text is not read again (no tokens); `force` re-reads the chosen screens
    again = _wait(c, c.post(f"/v1/headless/courses/{course_id}/narrate").json()["id"])
    assert again["result"]["narrated"] == [] and sorted(again["result"]["unchanged"]) == [1, 2, 3, 4]
    assert again["result"]["narrationTokens"] == 0


def test_narration_audio_is_scoped_to_its_course_and_client(tts_server: tuple[Server, Install]) -> None:
    server, install = tts_server
    c = server.client(install.test_key)
    demo = c.get("/v1/headless/setup/status").json()["demoCourseId"]
    narrated = _duplicate(c, demo, client="acme")
    job = _wait(c, c.post(f"/v1/headless/course/{narrated}/narrate", json={"screenIds": [1]}).json()["id"])
    assert job["status"] == "succeeded" and job["result"]["narrated"] == [1], job
    assert c.post(f"/v1/headless/course/{narrated}/publish").status_code == 200
    other = _duplicate(c, demo, client="globex")
    assert c.post(f"/v1/headless/course/{other}/publish").status_code == 200

    own = _session(server, c, action="view", courseId=narrated, identifier="l-1", clientIdentifier="acme")
    assert own.get("/embed/api/course/narration/1").status_code == 200
    _error(own.get("/embed/api/course/narration/2"), 404, "no narration")  # screen 2 was not narrated
    # no session, a forged one, an API key instead of a session: 401
    _error(httpx.get(f"{server.url}/embed/api/course/narration/1"), 401, "invalid")
    _error(httpx.get(f"{server.url}/embed/api/course/narration/1", headers={"Authorization": "Bearer x.y.z"}), 401,
           "invalid")
    _error(httpx.get(f"{server.url}/embed/api/course/narration/1", headers={"Authorization": install.test_key}),
           401, "invalid")
    # another course's learner session cannot reach this course's clips
    stranger = _session(server, c, action="view", courseId=other, identifier="l-2", clientIdentifier="globex")
    _error(stranger.get(f"/embed/api/course/narration/1?id={narrated}"), 403, "another course")
    _error(stranger.get("/embed/api/course/narration/1"), 404, "no narration")  # its own course has none
    # another client's builder session: refused for this course
    globex_author = _session(server, c, action="edit", courseId=narrated, identifier="a-2", clientIdentifier="globex")
    _error(globex_author.get("/embed/api/builder/narration/1"), 403, "another client")
    acme_author = _session(server, c, action="edit", courseId=narrated, identifier="a-1", clientIdentifier="acme")
    assert acme_author.get("/embed/api/builder/narration/1").content[:4] == b"RIFF"
    # a forged narration id in a builder save must be a real object id shape
    state = acme_author.get("/embed/api/builder/").json()
    screens = state["course"]["screens"]
    screens[0]["narration"]["id"] = "../../keyring.json"
    saved = acme_author.put("/embed/api/builder/", json={"revision": state["revision"], "content": {"screens": screens}})
    _error(saved, 422, "narration")


def test_a_language_variant_does_not_speak_the_source_language(tts_server: tuple[Server, Install]) -> None:
    server, install = tts_server
    c = server.client(install.test_key)
    demo = c.get("/v1/headless/setup/status").json()["demoCourseId"]
    course = _duplicate(c, demo, client="acme")
    job = _wait(c, c.post(f"/v1/headless/courses/{course}/narrate", json={"screenIds": [1]}).json()["id"])
    assert job["status"] == "succeeded" and job["result"]["narrated"] == [1], job
    made = c.post(f"/v1/headless/translation/translate/{course}", json={"language": "fr"}, timeout=900)
    assert made.status_code == 200, made.text
    for course_id in (course, made.json()["id"]):
        assert c.post(f"/v1/headless/course/{course_id}/publish").status_code == 200
    english = _session(server, c, action="view", courseId=course, identifier="v-1", clientIdentifier="acme")
    assert english.get("/embed/api/course/narration/1").content[:4] == b"RIFF"
    french = _session(server, c, action="view", courseId=course, identifier="v-2", clientIdentifier="acme",
                      options={"language": "fr"})
    played = french.get("/embed/api/course").json()["course"]
    assert played["language"] == "fr" and played["screens"][0]["narration"] is None
    _error(french.get("/embed/api/course/narration/1"), 404, "no narration")


def test_narration_needs_the_entitlement(tts_server: tuple[Server, Install]) -> None:
    server, install = tts_server
    c = server.client(install.test_key)
    demo = c.get("/v1/headless/setup/status").json()["demoCourseId"]
    author = _session(server, c, action="edit", courseId=demo, identifier="a-1", options={"narrations": True})
    assert author.get("/embed/api/builder/").json()["capabilities"]["narrations"] is True
    ws = str(install.workspace_id)
    cli("workspace", "entitlement", "--workspace", ws, "narrations", "off", data_dir=install.data_dir)
    try:
        for prefix in PREFIXES:
            _error(c.post(f"{prefix}/courses/{demo}/narrate"), 403, "narrations entitlement")
        assert author.get("/embed/api/builder/").json()["capabilities"]["narrations"] is False
        _error(author.post("/embed/api/builder/ai/narrate", json={}), 403, "not enabled")
    finally:
        cli("workspace", "entitlement", "--workspace", ws, "narrations", "on", data_dir=install.data_dir)
    # without options.narrations the builder has no narration either
    plain = _session(server, c, action="edit", courseId=demo, identifier="a-1")
    assert plain.get("/embed/api/builder/").json()["capabilities"]["narrations"] is False
    _error(plain.post("/embed/api/builder/ai/narrate", json={}), 403, "not enabled")
    _error(c.post("/v1/headless/courses/999999/narrate"), 404, "not found")


HOSTILE = (
    "<p>Wash\x00 your\x07 hands\u200b before\u202e work.</p><p>\x1bRed\x7f means\x85 stop.</p>"
    + "<p>" + "A" * 15000 + "</p>"  # one 15,000-letter "word": not read out
    + "<script>alert('never read')</script>"
)


def test_hostile_text_is_cleaned_bounded_and_still_spoken(tts_server: tuple[Server, Install]) -> None:
    server, install = tts_server
    c = server.client(install.test_key)
    author = _session(server, c, action="edit", identifier="a-9", clientIdentifier="acme", options={"narrations": True})
    state = author.get("/embed/api/builder/").json()
    screens = [{"id": 1, "type": "text", "title": "Hygiene\x0b rules", "content": {"html": HOSTILE}}]
    saved = author.put("/embed/api/builder/", json={"revision": state["revision"], "content": {"screens": screens}})
    assert saved.status_code == 200, saved.text
    started = author.post("/embed/api/builder/ai/narrate", json={"screenIds": [1]})
    assert started.status_code == 202, started.text
    job = _wait(author, started.json()["id"], prefix="/embed/api/builder")
    assert job["status"] == "succeeded", job
    spoken = "Hygiene rules. Wash your hands before work. Red means stop."
    assert job["result"]["narrationTokens"] == len(spoken)
    duration, rms, _rate = _pcm_stats(author.get("/embed/api/builder/narration/1").content)
    assert rms > 0.01 and 1.5 < duration < 12, duration


def test_narration_text_is_bounded_and_chunked() -> None:
    huge = {"type": "text", "title": "Long", "content": {"html": "<p>" + "Keep the exits clear at all times. " * 2000 + "</p>"}}
    text = narration.narration_text(huge)
    assert 0.5 * narration.MAX_SCREEN_CHARS < len(text) <= narration.MAX_SCREEN_CHARS and text.endswith(".")
    pieces = narration.chunks(text)
    assert all(0 < len(p) <= narration.CHUNK_CHARS for p in pieces) and " ".join(pieces) == text
    run_on = "word " * 3000  # no sentence end at all
    pieces = narration.chunks(narration.clean(run_on))
    assert all(len(p) <= narration.CHUNK_CHARS for p in pieces) and len(pieces) >= 40
    quiz = {"type": "quiz", "title": "Check", "content": {"questions": [
        {"id": 1, "question": "Two plus two?", "answers": [{"id": 1, "text": "Four", "correct": True}],
         "feedback": {"correct": "SECRET-FEEDBACK"}}]}}
    assert narration.narration_text(quiz) == "Check. Two plus two? Four."  # never the answer key or feedback
    assert narration.clean("a\x00b\u202ec\u200bd\te") == "a bcd e"


def test_missing_voice_is_a_clear_503_and_a_clear_job_error(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    install = init_data_dir(tmp_path_factory.mktemp("no-tts") / "data")
    missing = "/nonexistent/venv-tts/bin/python"
    server = start_server(install.data_dir, env={"APPLIANCE_AI_TTS_PYTHON": missing})
    try:
        c = server.client(install.test_key)
        demo = c.get("/v1/headless/setup/status").json()["demoCourseId"]
        for prefix in PREFIXES:
            response = c.post(f"{prefix}/courses/{demo}/narrate")
            _error(response, 503, "Narration is not installed")
            assert "make tts-deps" in response.json()["message"] and missing not in response.text
        author = _session(server, c, action="edit", courseId=demo, identifier="a-1", options={"narrations": True})
        _error(author.post("/embed/api/builder/ai/narrate", json={}), 503, "Narration is not installed")
        assert "/nonexistent/venv-tts" in server.log()  # the operator's log names the path
    finally:
        server.stop()
    # a job that finds the voice gone (e.g. queued before a restart) fails with the same words
    from appliance import config
    from appliance.ai.jobs import AIService
    from appliance.ai.narration import KIND
    from appliance.runtime import open_runtime

    monkeypatch.setenv("APPLIANCE_AI_TTS_PYTHON", missing)
    runtime = open_runtime(config.load(install.data_dir))
    service = AIService(runtime, workers=1)
    try:
        job_id, future = service.submit(install.workspace_id, "test", KIND, {"courseId": demo}, "test")
        with pytest.raises(Exception, match="no text-to-speech interpreter"):
            future.result(timeout=60)
        job = service.get(install.workspace_id, "test", job_id)
        assert job is not None and job["status"] == "failed"
        assert job["error"].startswith("Narration is not installed"), job
    finally:
        service.stop()
        runtime.close()
