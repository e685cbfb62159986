"""The player plays a screen's narration: real Chromium, the real session API, the real piper voice."""

from __future__ import annotations

import time
from pathlib import Path

from tests.embeds.conftest import Appliance


def _wait_job(api, job_id: int) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = api.get(f"/v1/headless/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError("the narration job did not finish")


def test_player_shows_a_labelled_audio_control_that_loads(appliance: Appliance, page, artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    with appliance.api() as api:
        made = api.post(f"/v1/headless/course/{appliance.all_types_course}/duplicate", json={})
        course_id = made.json()["id"]
        started = api.post(f"/v1/headless/courses/{course_id}/narrate", json={"screenIds": [1]})
        assert started.status_code == 202, started.text
        job = _wait_job(api, started.json()["id"])
        assert job["status"] == "succeeded" and job["result"]["narrated"] == [1], job
        assert api.post(f"/v1/headless/course/{course_id}/publish").status_code == 200
        url = api.post("/v1/headless/embed/course", json={"action": "view", "courseId": course_id,
                                                           "identifier": "listener-1"}).text
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(url)
    page.get_by_role("button", name="Start").click()
    page.get_by_role("heading", name="Text").wait_for()
    region = page.get_by_role("region", name="Listen to this screen")
    region.wait_for()
    audio = region.locator("audio")
    audio.wait_for()
    # labelled, with native (keyboard-operable) controls, from a blob: URL made from the Bearer fetch
    label_id = audio.get_attribute("aria-labelledby")
    assert label_id and "Listen to this screen" in page.locator(f"#{label_id}").inner_text()
    assert audio.evaluate("a => a.controls && a.tabIndex >= 0 && a.src.startsWith('blob:')")
    page.wait_for_function(
        "() => { const a = document.querySelector('.narration audio'); return a && a.readyState >= 1 && a.duration > 0 }",
        timeout=15000,
    )
    duration = audio.evaluate("a => a.duration")
    page.screenshot(path=str(artifacts / "narration-player.png"))
    assert abs(duration - job["result"]["seconds"]) < 0.2, duration
    # keyboard: Tab reaches the audio control
    page.locator("#screen-title").focus()
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.tagName") == "AUDIO":
            break
    assert page.evaluate("document.activeElement.tagName") == "AUDIO"
    assert any("/embed/api/course/narration/1" in r for r in requests)
    assert page.context.cookies() == []
    # a screen without narration has no audio control
    page.get_by_role("button", name="Next").click()
    page.get_by_role("heading", name="Process").wait_for()
    assert page.locator(".narration").count() == 0


def test_builder_narrate_button_narrates_and_the_preview_plays_it(appliance: Appliance, page) -> None:  # type: ignore[no-untyped-def]
    with appliance.api() as api:
        course_id = api.post(f"/v1/headless/course/{appliance.all_types_course}/duplicate", json={}).json()["id"]
        mint = {"action": "edit", "courseId": course_id, "identifier": "author-n"}
        plain = api.post("/v1/headless/embed/course", json=mint).text
        url = api.post("/v1/headless/embed/course", json={**mint, "options": {"narrations": True}}).text
    page.goto(plain)
    page.get_by_role("button", name="Undo").wait_for()
    assert page.get_by_role("button", name="Narrate").count() == 0  # only with options.narrations
    page.goto(url)
    page.get_by_role("button", name="Narrate").click()
    panel = page.get_by_role("region", name="AI progress")
    panel.get_by_text("Done").wait_for(timeout=120000)
    page.get_by_role("tab", name="Preview").click()
    page.get_by_role("button", name="Start", exact=True).click()
    page.get_by_role("heading", name="Text").wait_for()
    page.wait_for_function(
        "() => { const a = document.querySelector('.narration audio'); return a && a.duration > 0 }", timeout=15000
    )
