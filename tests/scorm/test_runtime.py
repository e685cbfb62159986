"""Packages from the real export route run in a real SCORM runtime (scorm-again) in Chromium: the
learner completes the demo course and passes its quiz; the LMS side records it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.scorm.conftest import Appliance, Lms

DEMO = 1  # the demo course of the test environment ("New starter induction", quiz pass mark 50 %)


def _export(appliance: Appliance, kind: str, version: str, course: int = DEMO) -> bytes:
    with appliance.api() as c:
        response = c.get(f"/v1/headless/course/scorm/{course}", params={"type": kind, "version": version})
    assert response.status_code == 200, response.text
    return response.content


def _launch(page: Any, lms: Lms, pkg: str, version: str, learner: str = "learner-1", seed: str | None = None) -> Any:
    query = f"version={version}&pkg={pkg}&learner={learner}" + (f"&seed={quote(seed)}" if seed else "")
    page.goto(f"{lms.url}/?{query}")
    return page.frame_locator("#sco")


def _complete_demo(frame: Any, *, wrong_first: bool = False) -> None:
    frame.get_by_role("button", name="Start").click()
    frame.get_by_role("heading", name="Welcome aboard").wait_for()
    frame.get_by_role("button", name="Next").click()
    frame.get_by_role("heading", name="Your first day").wait_for()
    frame.get_by_role("button", name="Next").click()
    frame.get_by_role("heading", name="Before Friday").wait_for()
    for box in frame.get_by_role("checkbox").all():
        box.check()
    frame.get_by_role("button", name="Next").click()
    frame.get_by_role("heading", name="Quick check").wait_for()
    if wrong_first:
        frame.get_by_label("Nobody").check()
        frame.get_by_role("button", name="Check answer").click()
        frame.get_by_text("Your buddy shows you around.").wait_for()
        frame.get_by_role("button", name="Try again").click()
    frame.get_by_label("Your buddy").check()
    frame.get_by_role("button", name="Check answer").click()
    frame.get_by_text("Right: your buddy is there for you.").wait_for()
    frame.get_by_role("button", name="Finish").click()
    frame.get_by_text("Well done!").wait_for()


def _cmi(page: Any, version: str) -> dict[str, Any]:
    if version == "1.2":
        return page.evaluate(
            """() => { const c = window.API.cmi.core; return {status: c.lesson_status, raw: c.score.raw,
              min: c.score.min, max: c.score.max, location: c.lesson_location, sets: window.__sets,
              suspend: window.API.cmi.suspend_data, calls: window.__calls}; }"""
        )
    return page.evaluate(
        """() => { const c = window.API_1484_11.cmi; return {completion: c.completion_status,
          success: c.success_status, raw: c.score.raw, min: c.score.min, max: c.score.max,
          scaled: c.score.scaled, progress: c.progress_measure, sets: window.__sets,
          suspend: c.suspend_data, calls: window.__calls}; }"""
    )


def _interactions(page: Any, version: str) -> list[dict[str, Any]]:
    """The LMS's record of cmi.interactions (scorm-again's own JSON rendering: 1.2 fields are write-only
    through LMSGetValue), plus the count the SCO sees through the API."""
    api = "window.API" if version == "1.2" else "window.API_1484_11"
    get = "LMSGetValue" if version == "1.2" else "GetValue"
    data = page.evaluate(
        f"""() => ({{count: {api}.{get}("cmi.interactions._count"),
          rows: JSON.parse(JSON.stringify({api}.cmi.interactions))}})"""
    )
    rows: list[dict[str, Any]] = [data["rows"][k] for k in sorted(data["rows"], key=int)]
    assert int(data["count"]) == len(rows), data
    return rows


def _check_interaction(row: dict[str, Any], version: str, *, ident: str, response: str, correct: bool) -> None:
    assert row["id"] == ident and row["type"] == "choice", row
    pattern = row["correct_responses"]["0"]["pattern"]
    if version == "1.2":
        assert row["student_response"] == response and row["result"] == ("correct" if correct else "wrong")
        assert pattern == "a" and row["weighting"] == "1"
        assert re.fullmatch(r"\d{2}:\d{2}:\d{2}", row["time"]) and re.fullmatch(r"\d{2,4}:\d{2}:\d{2}(\.\d{1,2})?", row["latency"])
    else:
        assert row["learner_response"] == response and row["result"] == ("correct" if correct else "incorrect")
        assert pattern == "answer-1" and row["description"] == "Who shows you around on your first day?"
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{2}Z", row["timestamp"]), row
        assert re.fullmatch(r"PT\d+H\d+M\d+S", row["latency"])


@pytest.mark.parametrize("version", ["1.2", "2004"])
def test_static_package_completes_in_scorm_again(
    page: Any, appliance: Appliance, lms: Lms, artifacts: Path, version: str
) -> None:
    pkg = f"static-{version}"
    lms.install(pkg, _export(appliance, "static", version))
    frame = _launch(page, lms, pkg, version)
    assert frame.locator(".test-mode").is_visible()  # a test-environment export
    _complete_demo(frame, wrong_first=version == "2004")
    page.screenshot(path=str(artifacts / f"scorm-{version}-static-finish.png"), full_page=True)
    cmi = _cmi(page, version)
    times = [v for k, v in cmi["sets"] if k.endswith("session_time")]
    assert times, cmi["sets"]
    assert float(cmi["raw"]) == 100 and float(cmi["min"]) == 0 and float(cmi["max"]) == 100
    if version == "1.2":
        assert cmi["status"] == "passed"
        assert re.fullmatch(r"\d{4}:\d{2}:\d{2}\.\d{2}", times[-1]) and cmi["calls"].count("LMSInitialize") == 1
        assert "LMSCommit" in cmi["calls"]
    else:
        assert cmi["completion"] == "completed" and cmi["success"] == "passed"
        assert float(cmi["scaled"]) == 1.0 and float(cmi["progress"]) == 1.0
        assert re.fullmatch(r"PT\d+H\d+M\d+S", times[-1]) and cmi["calls"].count("Initialize") == 1
        assert "Commit" in cmi["calls"]
    suspend = json.loads(cmi["suspend"])
    assert suspend["p"] == 100 and suspend["d"] is True and suspend["b"] == {"4": 100}
    # each quiz check is journaled as an interaction (2004: the wrong first try, then the retry)
    rows = _interactions(page, version)
    if version == "1.2":
        assert len(rows) == 1, rows
        _check_interaction(rows[0], version, ident="screen-4-q-1", response="a", correct=True)
    else:
        assert len(rows) == 2, rows
        _check_interaction(rows[0], version, ident="screen-4-q-1", response="answer-2", correct=False)
        _check_interaction(rows[1], version, ident="screen-4-q-1", response="answer-1", correct=True)
    # leaving the SCO ends the attempt: LMSFinish / Terminate, once
    page.evaluate("document.getElementById('sco').src = 'about:blank'")
    finish = "LMSFinish" if version == "1.2" else "Terminate"
    page.wait_for_function(f"window.__calls.includes('{finish}')", timeout=10000)
    assert page.evaluate("window.__calls").count(finish) == 1


def test_static_package_fails_below_the_pass_mark(page: Any, appliance: Appliance, lms: Lms) -> None:
    """The scored course (pass mark 100 %) answered wrongly: failed, not passed."""
    pkg = "static-fail"
    lms.install(pkg, _export(appliance, "static", "1.2", appliance.ids["media"]))
    frame = _launch(page, lms, pkg, "1.2")
    frame.get_by_role("button", name="Start").click()
    frame.get_by_role("img", name="One pixel").wait_for()  # the data: asset, now a file in the package
    pixel = frame.get_by_role("img", name="One pixel")  # decoded from the package (it may still be loading)
    pixel.evaluate("i => i.complete || new Promise((done) => { i.onload = i.onerror = done; })")
    assert pixel.evaluate("i => i.naturalWidth") == 1
    frame.get_by_role("button", name="Next").click()
    frame.get_by_label("B").check()
    frame.get_by_role("button", name="Check answer").click()
    frame.get_by_text("No", exact=False).first.wait_for()
    frame.get_by_role("button", name="Finish").click()
    frame.get_by_role("heading", name="Course finished").wait_for()  # not "Well done!": the outcome is failed
    assert frame.get_by_role("button", name="Try the quiz again").is_visible()
    cmi = _cmi(page, "1.2")
    assert cmi["status"] == "failed" and float(cmi["raw"]) == 0
    (row,) = _interactions(page, "1.2")
    assert row["id"] == "screen-2-q-1" and row["student_response"] == "b" and row["result"] == "wrong"


def test_resume_from_suspend_data(page: Any, appliance: Appliance, lms: Lms) -> None:
    """A learner who left after two screens comes back: the LMS hands back the suspend data and the
    player resumes (the Resume button, then the third screen)."""
    pkg = "static-resume"
    lms.install(pkg, _export(appliance, "static", "2004"))
    frame = _launch(page, lms, pkg, "2004", learner="resumer")
    frame.get_by_role("button", name="Start").click()
    frame.get_by_role("button", name="Next").click()
    frame.get_by_role("heading", name="Your first day").wait_for()
    frame.get_by_role("button", name="Next").click()
    frame.get_by_role("heading", name="Before Friday").wait_for()
    cmi = _cmi(page, "2004")
    exits = [v for k, v in cmi["sets"] if k == "cmi.exit"]
    assert cmi["completion"] == "incomplete" and exits[-1] == "suspend"
    assert float(cmi["progress"]) == 0.5
    seed = json.dumps({"suspend_data": cmi["suspend"], "completion_status": "incomplete", "entry": "resume"})
    frame = _launch(page, lms, pkg, "2004", learner="resumer", seed=seed)
    frame.get_by_role("button", name="Resume").click()
    frame.get_by_role("heading", name="Before Friday").wait_for()


def test_expired_test_package_says_so(page: Any, appliance: Appliance, lms: Lms) -> None:
    pkg = "static-expired"
    target = lms.install(pkg, _export(appliance, "static", "2004"))
    config = (target / "package.js").read_text()
    assert '"expires": ' in config
    head, tail = config.split('"expires": ', 1)
    (target / "package.js").write_text(head + '"expires": 1000' + tail[tail.index(","):])
    frame = _launch(page, lms, pkg, "2004")
    frame.get_by_role("alert").wait_for()
    assert "expired" in frame.get_by_role("alert").inner_text()
    assert frame.get_by_role("button", name="Start").count() == 0


def test_dynamic_package_against_the_running_appliance(
    page: Any, appliance: Appliance, lms: Lms, artifacts: Path
) -> None:
    """The launcher on the LMS origin loads the live course from the appliance (another origin, CORS),
    the appliance grades the quiz and records a SCORM tracking; the LMS records completion."""
    pkg = "dynamic-2004"
    target = lms.install(pkg, _export(appliance, "dynamic", "2004"))
    assert '"correct"' not in (target / "package.js").read_text()  # no answer key in a dynamic package
    frame = _launch(page, lms, pkg, "2004", learner="dyn-learner")
    _complete_demo(frame)
    page.screenshot(path=str(artifacts / "scorm-2004-dynamic-finish.png"), full_page=True)
    cmi = _cmi(page, "2004")
    assert cmi["completion"] == "completed" and cmi["success"] == "passed" and float(cmi["scaled"]) == 1.0
    (row,) = _interactions(page, "2004")  # correctness from the appliance's grading answer
    _check_interaction(row, "2004", ident="screen-4-q-1", response="answer-1", correct=True)
    with appliance.api() as c:
        rows = c.get("/v1/headless/trackings", params={"id": DEMO, "identifier": "scorm:dyn-learner"}).json()
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["scorm"] is True and row["completed"] and row["passed"] and row["score"] == 100
    assert row["progress_percent"] == 100


def test_dynamic_package_after_the_token_expired(page: Any, appliance: Appliance, lms: Lms) -> None:
    """The appliance refuses an expired package token; the launcher shows the expiry message."""
    pkg = "dynamic-expired"
    target = lms.install(pkg, _export(appliance, "dynamic", "1.2"))
    config = json.loads((target / "package.js").read_text().split("export default ", 1)[1].rstrip().rstrip(";"))
    config["token"] = appliance.expired_token
    config["expires"] = None  # the launcher's own check passes: the appliance must refuse
    (target / "package.js").write_text("export default " + json.dumps(config) + ";\n")
    frame = _launch(page, lms, pkg, "1.2")
    frame.get_by_role("alert").wait_for()
    assert "expired" in frame.get_by_role("alert").inner_text()


@pytest.mark.parametrize(("kind", "version"), [("static", "1.2"), ("dynamic", "2004")])
def test_narration_plays_inside_the_package(page: Any, appliance: Appliance, lms: Lms, kind: str, version: str) -> None:
    """A narrated screen's clip: in the zip (static) or fetched from the appliance with the package
    token (dynamic); the player shows the same labelled audio control and the audio loads."""
    from tests.scorm.conftest import tone_wav

    course = appliance.ids["narrated"]
    pkg = f"narrated-{kind}"
    target = lms.install(pkg, _export(appliance, kind, version, course))
    clips = sorted(p.relative_to(target).as_posix() for p in target.rglob("*.wav"))
    if kind == "static":
        assert clips == ["narration/1.wav"]  # screen 2 has no narration
        assert (target / "narration/1.wav").read_bytes() == tone_wav()  # decrypted at export
        assert '"file": "narration/1.wav"' in (target / "package.js").read_text()
    else:
        assert clips == []
    frame = _launch(page, lms, pkg, version)
    frame.get_by_role("button", name="Start").click()
    frame.get_by_role("heading", name="Listen").wait_for()
    region = frame.get_by_role("region", name="Listen to this screen")
    audio = region.locator("audio")
    audio.wait_for()
    assert audio.get_attribute("aria-labelledby") == "narration-label"
    audio.evaluate("a => new Promise((ok, ko) => { if (a.readyState >= 1) ok(); a.onloadedmetadata = ok; a.onerror = ko; })")
    assert 0.5 < audio.evaluate("a => a.duration") < 0.7
    frame.get_by_role("button", name="Next").click()
    frame.get_by_role("heading", name="Read").wait_for()
    assert frame.locator("audio").count() == 0
