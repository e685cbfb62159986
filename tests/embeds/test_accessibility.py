"""WCAG 2.1 AA of the learner side in real Chromium (issue 17): axe-core on every view of the player,
analytics, collection, the refused-link page and the sandbox; the demo course keyboard-only with focus
never on <body>; reflow at 320 px and at 200 % zoom."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.embeds.a11y import axe_violations, embed_frame
from tests.embeds.conftest import Appliance

OVERFLOW = "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
# every visible control lies inside the viewport horizontally (reachable without sideways scrolling)
OUTSIDE = """() => [...document.querySelectorAll('button, input, a[href], select, [tabindex="0"], audio, video')]
  .filter((e) => e.getClientRects().length)
  .map((e) => [e.getBoundingClientRect(), e])
  .filter(([r]) => r.left < -1 || r.right > document.documentElement.clientWidth + 1)
  .map(([r, e]) => e.outerHTML.slice(0, 80))"""
FOCUSED = """() => {
  const a = document.activeElement;
  if (!document.hasFocus() || !a || a === document.body) return "BODY";
  const label = a.labels && a.labels.length ? a.labels[0].textContent : "";
  return (a.getAttribute("aria-label") || label || a.textContent || a.tagName).trim().replace(/\\s+/g, " ");
}"""

# the focused element's outline: (style, width px, contrast against the page background)
RING = """() => {
  const e = document.activeElement, s = getComputedStyle(e);
  const rgb = (c) => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lum = (c) => { const [r, g, b] = rgb(c).map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const a = lum(s.outlineColor), b = lum(getComputedStyle(document.body).backgroundColor);
  return [s.outlineStyle, parseFloat(s.outlineWidth), (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)];
}"""


def _ring_ok(frame: Any, where: str) -> None:
    style, width, contrast = frame.evaluate(RING)
    assert style != "none" and width >= 2 and contrast >= 3, f"focus ring at {where}: {style} {width}px {contrast:.2f}:1"


def _track(appliance: Appliance, identifier: str, client: str, event: dict[str, Any]) -> None:
    """One player event over the embed API, as the player sends it. The server's sessions last
    SESSION_SECONDS (10 s, conftest): on a loaded machine one can end between the exchange and the
    event, and the player would then open a new one; so does this, up to three times."""
    with appliance.api() as api:
        for _ in range(3):
            url = api.post("/v1/headless/embed/course", json={
                "action": "view", "courseId": 1, "identifier": identifier, "clientIdentifier": client}).text
            session = api.post("/embed/api/session", json={"token": url.rsplit("/", 1)[1]}).json()["session"]
            answer = api.post("/embed/api/track", json=event, headers={"Authorization": f"Bearer {session}"})
            if answer.status_code != 401:
                break
        assert answer.status_code == 200, answer.text


def _open(page, host, **query):  # type: ignore[no-untyped-def]
    params = "&".join(f"{k}={v}" for k, v in query.items())
    page.goto(f"{host.url}/?{params}")
    page.wait_for_function("window.__msgs.some(m => m.data && m.data.event === 'ready')", timeout=20000)
    return page.frame_locator("#embed")


def _clean(target: Any, view: str) -> None:
    found = axe_violations(target)
    assert found == [], f"{view}: {found}"


def _reflows(frame: Any, view: str) -> None:
    scroll, client = frame.evaluate(OVERFLOW)
    assert scroll <= client, f"{view}: scrolls sideways ({scroll} > {client})"
    assert frame.evaluate(OUTSIDE) == [], view


class Keyboard:
    """Keys only, and after each one the embed holds focus on something other than <body>."""

    def __init__(self, page: Any, frame: Any) -> None:
        self.page, self.frame = page, frame

    def focused(self) -> str:
        return str(self.frame.evaluate(FOCUSED))

    def press(self, key: str, *, then: str | None = None) -> str:
        """Press `key`; when `then` is given wait until the focused element's name starts with it."""
        self.page.keyboard.press(key)
        if then is not None:
            try:
                self.frame.wait_for_function(f"() => ({FOCUSED})().startsWith({then!r})", timeout=10000)
            except PlaywrightTimeout:
                raise AssertionError(f"after {key}: focus on {self.focused()!r}, not {then!r}") from None
        now = self.focused()
        assert now != "BODY", f"focus on <body> after {key}"
        return now

    def tab_to(self, name: str, *, back: bool = False, limit: int = 12) -> None:
        for _ in range(limit):
            self.page.keyboard.press("Shift+Tab" if back else "Tab")
            if self.focused().startswith(name):
                return
        raise AssertionError(f"{name!r} not reached in {limit} Tabs (at {self.focused()!r})")


def test_demo_course_keyboard_only_with_axe_on_every_view(page, host, appliance: Appliance, artifacts) -> None:  # type: ignore[no-untyped-def]
    _open(page, host, id=1, identifier="a11y-keys", clientIdentifier="a11y")
    frame = embed_frame(page, appliance.origin)
    keys = Keyboard(page, frame)
    assert frame.locator(".loading, [role=status]:text('Loading')").count() == 0  # gone once drawn
    assert frame.locator("h1").all_inner_texts() == ["New starter induction"]
    assert frame.locator(".cover .meta").inner_text() == "4 minutes · 4 screens"
    _clean(frame, "cover")

    keys.tab_to("Start", limit=12)  # from the partner's page into the embed
    _ring_ok(frame, "Start")
    keys.press("Enter", then="Welcome aboard")
    assert frame.locator("main h1").inner_text() == "Welcome aboard" and frame.locator("h1").count() == 1
    _clean(frame, "text screen")
    keys.tab_to("Next")
    keys.press("Enter", then="Your first day")
    _clean(frame, "list screen")
    keys.press("ArrowRight", then="Before Friday")
    _clean(frame, "checklist screen")
    keys.tab_to("Set up your accounts")
    _ring_ok(frame, "a checkbox")
    keys.press("Space")
    keys.tab_to("Book your induction chat")
    keys.press("Space")
    frame.wait_for_function("() => !document.querySelector('.nav .next').disabled")  # every item ticked
    keys.tab_to("Next")
    keys.press("Enter", then="Quick check")
    _clean(frame, "quiz screen")
    status = frame.locator(".quiz-status[role=status]")
    assert status.count() == 1 and status.inner_text() == ""  # the live region is there before the result
    frame.evaluate("() => { window.__status = document.querySelector('.quiz-status'); }")

    keys.tab_to("Your buddy")
    keys.press("ArrowDown")  # "Nobody": wrong on purpose
    keys.tab_to("Check answer")
    keys.press("Enter", then="Try again")  # wrong: focus on Try again, never <body>
    assert frame.evaluate("() => window.__status === document.querySelector('.quiz-status')")
    assert "Not passed yet" in status.inner_text()
    chosen = frame.locator(".answer.chosen")
    assert chosen.inner_text().split("\n")[0] == "Nobody" and "Your answer" in chosen.inner_text()
    assert "Correct answer" in frame.locator(".answer.right").inner_text()  # in words, not colour alone
    assert chosen.evaluate("e => getComputedStyle(e).opacity") == "1"
    assert frame.locator(".quiz input:disabled").count() == 0  # not greyed-out controls
    assert frame.locator(".feedback.ko").inner_text().startswith("Incorrect.")
    _clean(frame, "quiz answered wrong")
    page.screenshot(path=str(artifacts / "a11y-quiz-wrong.png"), full_page=True)

    keys.press("Enter", then="Your buddy")  # Try again: focus on the first answer
    keys.press("Space")
    keys.tab_to("Check answer")
    keys.press("Enter", then="Finish")  # right: focus on Finish
    assert "Passed" in status.inner_text()
    _clean(frame, "quiz answered right")

    keys.press("Enter", then="Well done!")
    assert "Your score: 100% · Passed" in frame.locator(".outcome").inner_text()
    _clean(frame, "finish")
    page.screenshot(path=str(artifacts / "a11y-finish.png"), full_page=True)
    keys.tab_to("Finish")  # the course's finish.display_button, with its label
    keys.press("Enter")
    page.wait_for_function("window.__msgs.some(m => m.data && m.data.event === 'finish')", timeout=5000)
    assert keys.focused() == "Finish"
    keys.tab_to("Review the course", back=True)
    keys.press("Enter", then="Welcome aboard")
    for title in ("Your first day", "Before Friday", "Quick check"):
        keys.press("ArrowRight", then=title)
    assert frame.locator(".answer.chosen").inner_text().startswith("Your buddy")  # the review keeps answers
    keys.press("ArrowRight", then="Well done!")
    completed = [m for m in page.evaluate("window.__msgs") if m["data"]["event"] == "completed"]
    assert len(completed) == 1  # a review records nothing new


def test_finish_after_a_failed_quiz_follows_the_passing_rule(page, host, appliance: Appliance, artifacts) -> None:  # type: ignore[no-untyped-def]
    # a partner's light primary colour (as in test_browser): buttons and text stay readable
    frame_locator = _open(page, host, id=appliance.bilingual_course, identifier="a11y-fail",
                          options='{"color":"%23C4BCFC"}')
    frame = embed_frame(page, appliance.origin)
    frame_locator.get_by_role("button", name="Start").click()
    frame_locator.get_by_role("button", name="Next").click()
    frame_locator.get_by_role("radio", name="Red").check()
    frame_locator.get_by_role("button", name="Check answer").click()
    frame_locator.get_by_role("button", name="Finish").click()
    frame_locator.get_by_role("heading", level=1, name="Course finished").wait_for()
    assert "Your score: 0% · Not passed yet" in frame_locator.locator(".outcome").inner_text()
    assert frame_locator.get_by_text("Well done!").count() == 0
    _clean(frame, "finish, failed")
    page.screenshot(path=str(artifacts / "a11y-finish-failed.png"), full_page=True)
    with appliance.api() as api:
        row = api.get("/v1/headless/trackings", params={"id": appliance.bilingual_course, "identifier": "a11y-fail"}).json()[0]
        assert row["completed"] and row["passed"] is False
    frame_locator.get_by_role("button", name="Try the quiz again").click()
    frame_locator.get_by_role("heading", level=1, name="Which exit?").wait_for()
    frame_locator.get_by_role("radio", name="Green").check()
    frame_locator.get_by_role("button", name="Check answer").click()
    frame_locator.get_by_role("button", name="Finish").click()
    frame_locator.get_by_role("heading", level=1, name="Well done!").wait_for()
    with appliance.api() as api:
        row = api.get("/v1/headless/trackings", params={"id": appliance.bilingual_course, "identifier": "a11y-fail"}).json()[0]
        assert row["passed"] is True and row["score"] == 100


def test_every_screen_type_reflows_at_320_px(browser, host, appliance: Appliance, artifacts) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 320, "height": 640})
    page = context.new_page()
    try:
        frame_locator = _open(page, host, id=appliance.all_types_course, identifier="a11y-320")
        frame = embed_frame(page, appliance.origin)
        _reflows(page.main_frame, "sandbox at 320 px")
        _clean(page, "sandbox")
        _reflows(frame, "cover at 320 px")
        frame_locator.get_by_role("button", name="Start").click()
        nxt = frame_locator.get_by_role("button", name="Next")
        for title in ("Text", "Process", "Checklist", "Flashcards", "List", "Media"):
            frame_locator.get_by_role("heading", level=1, name=title).wait_for()
            if title == "Checklist":
                for box in frame_locator.get_by_role("checkbox").all():
                    box.check()
            if title == "Flashcards":
                for card in frame_locator.locator("button.card").all():
                    card.click()
            _reflows(frame, f"{title} at 320 px")
            _clean(frame, title)
            nxt.click()
        frame_locator.get_by_role("heading", level=1, name="Quiz").wait_for()
        frame_locator.get_by_role("radio", name="5").check()
        frame_locator.get_by_role("checkbox", name="2").check()
        frame_locator.get_by_role("button", name="Check answer").click()
        frame_locator.get_by_role("button", name="Try again").wait_for()
        _reflows(frame, "quiz feedback at 320 px")
        _clean(frame, "quiz, two questions wrong")
        page.screenshot(path=str(artifacts / "a11y-320-quiz-wrong.png"), full_page=True)
        frame_locator.get_by_role("button", name="Try again").click()
        frame_locator.get_by_role("radio", name="4").check()
        frame_locator.get_by_role("checkbox", name="2").check()
        frame_locator.get_by_role("checkbox", name="6").check()
        frame_locator.get_by_role("button", name="Check answer").click()
        frame_locator.get_by_role("button", name="Finish").click()
        frame_locator.get_by_role("heading", level=1, name="All done").wait_for()
        _reflows(frame, "finish at 320 px")
        _clean(frame, "finish with feedback stars")
        frame_locator.get_by_role("button", name="4 / 5").click()
        frame_locator.get_by_text("Thanks for your feedback").wait_for()
        assert frame.evaluate(FOCUSED) == "Finish"  # the stars went away: focus did not
    finally:
        context.close()


def test_analytics_collection_and_refused_page(browser, host, appliance: Appliance, artifacts) -> None:  # type: ignore[no-untyped-def]
    # 640 CSS px wide: what a 1280 px window shows at 200 % zoom
    context = browser.new_context(viewport={"width": 640, "height": 800})
    page = context.new_page()
    try:
        frame_locator = _open(page, host, kind="analytics/course", id=1, clientIdentifier="a11y-nobody")
        frame = embed_frame(page, appliance.origin)
        frame_locator.get_by_text("No learners yet.").wait_for()
        assert frame.locator(".loading").count() == 0 and frame.locator("table").count() == 0
        _clean(frame, "analytics, no learners")
        page.screenshot(path=str(artifacts / "a11y-analytics-empty.png"), full_page=True)
        _reflows(frame, "analytics, no learners, 200 %")

        _track(appliance, "a11y-learner-with-a-long-identifier-1", "a11y-data", {"event": "progress", "progress": 40})
        frame_locator = _open(page, host, kind="analytics/course", id=1, clientIdentifier="a11y-data")
        frame = embed_frame(page, appliance.origin)
        region = frame_locator.get_by_role("region", name="Learners", exact=True)  # the table's scroll box
        region.wait_for()
        _clean(frame, "analytics with data")
        _reflows(frame, "analytics with data, 200 %")
        page.set_viewport_size({"width": 320, "height": 640})
        _reflows(frame, "analytics with data, 320 px")
        assert region.evaluate("r => r.scrollWidth > r.clientWidth")  # the table does scroll here...
        region.focus()
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        frame.wait_for_function("() => document.querySelector('.table-wrap').scrollLeft > 0")  # ...by keyboard

        with appliance.api() as api:
            ident = api.post("/v1/headless/collection", json={"title": "A11y path", "courseIds": [1]}).json()["id"]
        frame_locator = _open(page, host, kind="collection", id=ident, clientIdentifier="a11y")
        frame = embed_frame(page, appliance.origin)
        assert frame.locator(".loading").count() == 0
        _clean(frame, "collection")
        _reflows(frame, "collection, 320 px")
        frame_locator.get_by_role("button", name="Open: New starter induction").click()
        frame_locator.get_by_role("heading", level=1, name="New starter induction").wait_for()
        assert frame.evaluate(FOCUSED) == "New starter induction"  # the course's cover took focus
        _clean(frame, "a course opened from the collection")
        frame_locator.get_by_role("button", name="Back to the list").click()
        frame.wait_for_function(f"() => ({FOCUSED})() === 'Open: New starter induction'")

        page.goto(f"{appliance.url}/embed/course/not-a-token")
        main = page.get_by_role("main")
        assert main.get_by_role("heading", level=1).inner_text() == "This link can't be opened"
        text = main.inner_text()
        assert "ask the site that showed you this course for a new link" in text and "reload" not in text.lower()
        _clean(page, "refused link")
        page.screenshot(path=str(artifacts / "a11y-refused.png"), full_page=True)
        _reflows(page.main_frame, "refused link, 320 px")
    finally:
        context.close()
