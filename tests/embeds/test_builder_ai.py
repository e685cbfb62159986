"""The builder's AI tools in real Chromium, in a cross-origin iframe on the partner sandbox, with the
real server and the real test model (SmolLM2-135M): a screen and a quiz from a prompt and from the
course's own content, refining selected text, translating the course into a language variant the
author reviews and publishes, and a presentation (.pptx) turned into one screen per slide group.

The tiny model's words are random, so the assertions are about structure: what the saved draft holds
(read back through the APIs), what the builder shows, what is published. The engine re-samples
invalid answers; when a job still fails, the builder shows the product's own words ("…did not pass
validation; retry") and the test does what an author would: retry once.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.embeds.builder_support import api_client, claims_of, host_events, open_builder, wait_saved
from tests.helpers import Install, Server

JOB_MS = 300_000  # one job of the tiny model, with room for a machine shared with other test runs
RETRY = "The model's answer did not pass validation; retry"  # appliance/ai/http.py, InvalidOutput


def _author(server: tuple[Server, Install], course: int, identifier: str) -> httpx.Client:
    """The author's own builder session (the API the iframe uses), to seed and read back drafts."""
    srv, _ = server
    url = api_client(server).post("/v1/headless/embed/course", json={
        "action": "edit", "courseId": course, "identifier": identifier, "clientIdentifier": "acme"}).text
    opened = httpx.post(f"{srv.url}/embed/api/session", json={"token": url.rsplit("/", 1)[1]}, timeout=30)
    assert opened.status_code == 200, opened.text
    return httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {opened.json()['session']}"}, timeout=30)


def _course(server: tuple[Server, Install], identifier: str, title: str | None = None,
            screens: list[dict[str, Any]] | None = None) -> int:
    """A new course of client acme (as an edit mint makes it), optionally with content."""
    minted = api_client(server).post("/v1/headless/embed/course",
                               json={"action": "edit", "identifier": identifier, "clientIdentifier": "acme"})
    assert minted.status_code == 200, minted.text
    course = int(claims_of(minted.text)["course"])
    if title or screens:
        author = _author(server, course, identifier)
        revision = author.get("/embed/api/builder/").json()["revision"]
        saved = author.put("/embed/api/builder/", json={
            "revision": revision, "title": title or "Untitled course", "content": {"screens": screens or []}})
        assert saved.status_code == 200, saved.text
    return course


def _draft(server: tuple[Server, Install], course: int) -> dict[str, Any]:
    """The saved draft as the headless API answers it (cloud field names: `type` is an object)."""
    response = api_client(server).get(f"/v1/headless/courses/{course}")
    assert response.status_code == 200, response.text
    draft: dict[str, Any] = response.json()
    return draft


def _types(draft: dict[str, Any]) -> list[str]:
    return [s["type"]["name"] for s in draft["screens"]]


def _job(frame, start: Callable[[], None]) -> str:  # type: ignore[no-untyped-def]
    """Start an AI job from the builder and wait until its panel says how it ended; retry once when
    the tiny model's answer failed validation (the product's own message tells the author to)."""
    for attempt in range(2):
        start()
        panel = frame.locator(".job")
        panel.get_by_role("button", name="Dismiss").wait_for(timeout=JOB_MS)  # shown once the job ended
        text = str(panel.locator("p").first.inner_text())  # "<label> · Done" or "<label> · <error>"
        if text.endswith("· Done"):
            return text
        assert RETRY in text and attempt == 0, panel.inner_text()  # any other failure is a bug; so is failing twice
        panel.get_by_role("button", name="Dismiss").click()
    raise AssertionError("unreachable")


def _dismiss(frame) -> None:  # type: ignore[no-untyped-def]
    frame.locator(".job").get_by_role("button", name="Dismiss").click()
    frame.locator(".job").wait_for(state="detached")


def _paragraphs(markup: str) -> list[str]:
    """The text of each paragraph of sanitised HTML, whitespace normalised."""
    texts = [html.unescape(re.sub(r"<[^>]+>", "", p)) for p in re.findall(r"<p>(.*?)</p>", markup, re.S)]
    return [" ".join(t.split()) for t in texts if t.strip()]


def test_author_generates_a_screen_and_a_quiz_from_a_prompt_and_from_the_course(page, sandbox, server, artifacts) -> None:  # type: ignore[no-untyped-def]
    course = _course(server, "author-screens", "Sorting waste", [
        {"id": 1, "type": "text", "title": "Bins", "content": {"html": "<p>Put paper in the blue bin and glass in the green bin.</p>"}},
    ])
    frame = open_builder(page, sandbox, course=course, action="edit", identifier="author-screens", client="acme", options={})
    frame.get_by_role("heading", name="Outline").wait_for()
    tools = frame.locator("details.ai-tools")
    tools.locator("summary").focus()
    page.keyboard.press("Enter")  # the disclosure opens from the keyboard
    generate_screen = frame.get_by_role("button", name="Generate screen")
    generate_quiz = frame.get_by_role("button", name="Generate quiz")
    frame.get_by_label("Quiz questions").fill("1")

    # 1. a one-question quiz and 2. a text screen from the course's own content (no prompt); these run
    # first, while the course is short (its content is the model's source)
    frame.get_by_label("Use the course's own content").check()
    with page.expect_request(lambda r: r.url.endswith("/ai/quiz")) as sent:
        _job(frame, generate_quiz.click)
    assert sent.value.post_data_json == {"prompt": None, "fromCourse": True, "questionCount": 1}
    assert frame.locator(".job .generated li").count() == 1  # the screen, listed as soon as it existed
    assert frame.locator(".outline-list li").count() == 2
    frame.get_by_role("heading", name="Screen 2: Quiz").wait_for()  # the new screen is open
    frame.get_by_label("Question 1 text").wait_for()  # and editable like a hand-made quiz
    quiz = _draft(server, course)["screens"][1]
    assert quiz["type"]["name"] == "quiz" and len(quiz["content"]["questions"]) == 1
    answers = quiz["content"]["questions"][0]["answers"]
    assert len(answers) >= 2 and sum(a["correct"] for a in answers) == 1
    page.screenshot(path=str(artifacts / "builder-ai-quiz-from-course.png"), full_page=True)
    _dismiss(frame)
    frame.get_by_label("Screen type", exact=True).select_option("text")
    with page.expect_request(lambda r: r.url.endswith("/ai/screen")) as sent:
        _job(frame, generate_screen.click)
    assert sent.value.post_data_json == {"type": "text", "prompt": None, "fromCourse": True}
    frame.get_by_role("heading", name="Screen 3: Text").wait_for()
    _dismiss(frame)

    # 3. a checklist screen and 4. a quiz from a prompt
    frame.get_by_label("Use the course's own content").uncheck()
    frame.get_by_label("What should it cover?").fill("Recycling paper at the office")
    frame.get_by_label("Screen type", exact=True).select_option("checklist")
    with page.expect_request(lambda r: r.url.endswith("/ai/screen")) as sent:
        _job(frame, generate_screen.click)
    assert sent.value.post_data_json == {"type": "checklist", "prompt": "Recycling paper at the office", "fromCourse": False}
    frame.get_by_role("heading", name="Screen 4: Checklist").wait_for()
    page.screenshot(path=str(artifacts / "builder-ai-screen.png"), full_page=True)
    _dismiss(frame)
    with page.expect_request(lambda r: r.url.endswith("/ai/quiz")) as sent:
        _job(frame, generate_quiz.click)
    assert sent.value.post_data_json == {"prompt": "Recycling paper at the office", "fromCourse": False, "questionCount": 1}
    frame.get_by_role("heading", name="Screen 5: Quiz").wait_for()

    draft = _draft(server, course)
    screens = draft["screens"]
    assert _types(draft) == ["text", "quiz", "text", "checklist", "quiz"]
    assert len({s["id"] for s in screens}) == 5 and all(s["title"] for s in screens)
    assert screens[0]["content"]["html"] == "<p>Put paper in the blue bin and glass in the green bin.</p>"  # untouched
    assert _paragraphs(screens[2]["content"]["html"])  # generated text, as sanitised HTML paragraphs
    assert screens[3]["content"]["items"]
    assert len(screens[4]["content"]["questions"]) == 1
    assert frame.locator(".outline-list li").count() == 5
    kinds = [(t, e) for t, e, _ in host_events(page)]
    assert kinds.count(("course", "updated")) + kinds.count(("course", "created")) >= 4  # one per job


def test_author_refines_selected_text_and_the_result_is_sanitised(page, sandbox, server, artifacts) -> None:  # type: ignore[no-untyped-def]
    first, second = "Keep the fire exit clear at all times.", "Report blocked exits to your manager."
    course = _course(server, "author-refine", "Fire exits", [
        {"id": 1, "type": "text", "title": "Exits", "content": {"html": f"<p>{first}</p><p>{second}</p>"}},
    ])
    frame = open_builder(page, sandbox, course=course, action="edit", identifier="author-refine", client="acme", options={})
    editor = frame.locator(".editable")
    editor.get_by_text(first).wait_for()

    refines: list[str] = []
    page.on("request", lambda r: refines.append(r.url) if r.url.endswith("/ai/refine") else None)

    def refine(select: Callable[[], None], operation: str) -> dict[str, Any]:
        """Select text with the keyboard, Tab to the refine menu below the text, choose, Apply."""
        for attempt in range(2):
            editor.click()
            select()
            page.keyboard.press("Tab")  # from the text to the refine menu below it
            menu = frame.get_by_label("Refine with AI")
            assert menu.evaluate("el => el === document.activeElement")
            # choosing (arrow keys walk a <select>'s options) changes nothing until Apply (WCAG 3.2.2)
            before, asked = editor.inner_html(), len(refines)
            page.keyboard.press("ArrowDown")
            page.keyboard.press("ArrowDown")
            page.wait_for_timeout(500)
            assert menu.input_value() == "expand" and len(refines) == asked and editor.inner_html() == before
            menu.select_option(operation)
            with page.expect_response(lambda r: r.url.endswith("/ai/refine"), timeout=JOB_MS) as answered:
                frame.locator(".refine").get_by_role("button", name="Apply").click()
            response = answered.value
            if response.ok:
                body: dict[str, Any] = response.json()
                return body
            # the model's answer failed validation twice over: the builder says so, the author retries
            assert response.status == 502 and attempt == 0, response.text()
            frame.locator(".refine [role=alert]", has_text=RETRY).wait_for()
        raise AssertionError("unreachable")

    def saved_html(expect: Callable[[str], bool]) -> str:
        deadline = time.monotonic() + 20
        while True:
            markup = str(_draft(server, course)["screens"][0]["content"]["html"])
            if expect(markup) or time.monotonic() > deadline:
                return markup
            time.sleep(0.2)

    # the real model shortens the first paragraph, selected with the keyboard
    def first_line() -> None:
        page.keyboard.press("Control+Home")
        page.keyboard.press("Shift+End")

    refined = refine(first_line, "shorten")["text"]
    expected = " ".join(refined.split())
    markup = saved_html(lambda m: _paragraphs(m) == [p for p in (expected, second) if p])
    wait_saved(frame)
    assert _paragraphs(markup) == [p for p in (expected, second) if p], markup  # only the selection changed
    assert set(re.findall(r"</?(\w+)", markup)) == {"p"}, markup  # the answer stayed text: no markup of its own
    page.screenshot(path=str(artifacts / "builder-ai-refine.png"), full_page=True)

    # whatever a model answers is inserted as text: markup in an answer never becomes markup. (The tiny
    # model rarely writes tags, so this answer is the one thing here not written by it.)
    hostile = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script><b>Tell</b> a manager.'
    page.route("**/embed/api/builder/ai/refine", lambda route: route.fulfill(
        status=200, content_type="application/json", body=json.dumps({"text": hostile})))

    def last_line() -> None:
        page.keyboard.press("Control+End")
        page.keyboard.press("Shift+Home")

    refine(last_line, "simplify")
    page.unroute("**/embed/api/builder/ai/refine")
    after = [p for p in (expected, " ".join(hostile.split())) if p]
    markup = saved_html(lambda m: _paragraphs(m) == after)
    wait_saved(frame)
    assert _paragraphs(markup) == after, markup
    assert "<img" not in markup and "<script" not in markup and "<b>" not in markup, markup
    assert "&lt;img" in markup and "&lt;script&gt;" in markup, markup
    embed = next(f for f in page.frames if "/embed/course/" in f.url)
    assert embed.evaluate("window.__xss") is None
    assert editor.locator("img, script, b").count() == 0


def test_author_translates_the_course_and_reviews_the_variant_before_publishing(page, sandbox, server, artifacts) -> None:  # type: ignore[no-untyped-def]
    course = _course(server, "author-tr", "Fire safety", [
        {"id": 1, "type": "text", "title": "Exits", "content": {"html": "<p>Keep exits clear.</p>"}},
        {"id": 2, "type": "checklist", "title": "Drill", "content": {"items": [{"title": "Find the alarm"}]}},
    ])
    frame = open_builder(page, sandbox, course=course, action="edit", identifier="author-tr", client="acme",
                  options={"translations": True, "publishing": True})
    frame.get_by_role("heading", name="Outline").wait_for()
    frame.get_by_role("tab", name="Translate", exact=True).click()  # the tab
    frame.get_by_role("heading", name="Translations").wait_for()
    assert frame.locator(".variants li").count() == 1  # the source only
    frame.get_by_label("Translate into (language code)").fill("fr")
    text = _job(frame, frame.get_by_role("button", name="Translate the course").click)
    assert "Translating into fr" in text

    # a French variant exists, as a draft: learners see nothing of it yet
    variants = api_client(server).get(f"/v1/headless/translations/{course}").json()
    french = next(v for v in variants if v["language"] == "fr")
    assert not french["published"] and french["missingScreens"] == 0, variants
    listed = frame.locator(".variants li:has(strong:text-is('fr'))")
    listed.get_by_text("draft").wait_for()

    # the author opens it, reviews it (fixes its title) and sees it is the variant being edited
    listed.get_by_role("button", name="Review fr").click()
    frame.get_by_text("Translation: fr").wait_for()
    assert frame.locator(".outline-list li").count() == 2  # the source's screens, translated
    frame.get_by_label("Course title").fill("Sécurité incendie")
    wait_saved(frame)
    author = _author(server, course, "author-tr")
    variant = author.get(f"/embed/api/builder/?course={french['id']}").json()["course"]
    assert variant["language"] == "fr" and variant["translationOf"] == course and variant["title"] == "Sécurité incendie"
    assert [s["type"] for s in variant["screens"]] == ["text", "checklist"]
    assert [s["id"] for s in variant["screens"]] == [1, 2]
    assert author.get("/embed/api/builder/").json()["course"]["title"] == "Fire safety"  # the source is untouched
    assert not next(v for v in api_client(server).get(f"/v1/headless/translations/{course}").json() if v["language"] == "fr")["published"]
    page.screenshot(path=str(artifacts / "builder-ai-translation-review.png"), full_page=True)

    # publishing from the variant publishes the variant (and only it)
    frame.get_by_role("button", name="Publish", exact=True).click()
    frame.get_by_text("Published (revision 1).").wait_for()
    after = {v["id"]: v for v in api_client(server).get(f"/v1/headless/translations/{course}").json()}
    assert after[french["id"]]["published"] and not after[course]["published"], after
    frame.get_by_role("tab", name="Translate", exact=True).click()
    frame.locator(".variants li:has(strong:text-is('fr'))").get_by_text("published").wait_for()


def test_author_converts_a_presentation_into_one_screen_per_slide_group(page, sandbox, server, artifacts) -> None:  # type: ignore[no-untyped-def]
    fixtures = pytest.importorskip("tests.documents.fixtures")
    # four slides, two of them section titles (a title and little text): two slide groups
    deck = fixtures.make_pptx([
        ("Working at height", []),
        ("Why falls happen", ["Unstable ladders cause most falls", "Wet rungs are slippery"]),
        ("Harnesses", []),
        ("Fitting a harness", ["Tighten leg straps", "Attach the lanyard above shoulder height"]),
    ])
    course = _course(server, "author-deck")
    frame = open_builder(page, sandbox, course=course, action="edit", identifier="author-deck", client="acme",
                  options={"flow": "convert", "publishing": True})
    frame.get_by_role("heading", name="Convert a presentation").wait_for()
    frame.get_by_label("Presentation file").set_input_files(files=[{
        "name": "ladders.pptx",
        "mimeType": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "buffer": deck,
    }])
    assert frame.get_by_label("Number of screens (optional)").input_value() == ""  # one per slide group
    with page.expect_request(lambda r: r.url.endswith("/documents/course")) as sent:
        _job(frame, frame.get_by_role("button", name="Create the course").click)
    assert sent.value.post_data_json == {"documentId": sent.value.post_data_json["documentId"], "kind": "presentation"}
    frame.get_by_role("heading", name="Outline").wait_for(timeout=30000)
    assert frame.locator(".outline-list li").count() == 2  # not the 5 a fixed screen count would give

    draft = _draft(server, course)
    assert [s["title"] for s in draft["screens"]] == ["Working at height", "Harnesses"]  # each group's first slide
    assert [s["description"] for s in draft["screens"]] == ["Slides 1-2", "Slides 3-4"]
    assert draft["title"] != "Untitled course"
    # screens the slides do not support are flagged to the author, visibly (the builder's own view)
    screens = _author(server, course, "author-deck").get("/embed/api/builder/").json()["course"]["screens"]
    unsupported = [s for s in screens if s.get("unsupported")]
    assert frame.locator(".outline-list .flag").count() == len(unsupported)
    page.screenshot(path=str(artifacts / "builder-from-presentation.png"), full_page=True)
    frame.get_by_role("button", name="Publish", exact=True).click()
    frame.get_by_text("Published (revision 1).").wait_for()
