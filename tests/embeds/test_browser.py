"""The embed in real Chromium, inside a cross-origin iframe on a partner host page."""

from __future__ import annotations

import time

from tests.embeds.conftest import SESSION_SECONDS, Appliance


def _open(page, host, **query):  # type: ignore[no-untyped-def]
    params = "&".join(f"{k}={v}" for k, v in query.items())
    page.goto(f"{host.url}/?{params}")
    page.wait_for_function("window.__msgs.some(m => m.data && m.data.event === 'ready')", timeout=20000)
    return page.frame_locator("#embed")


def _events(page):  # type: ignore[no-untyped-def]
    return page.evaluate("window.__msgs")


def test_learner_completes_demo_course(page, host, appliance: Appliance, artifacts) -> None:  # type: ignore[no-untyped-def]
    log_start = len(appliance.log())  # the server is shared: other tests refuse forged tokens on purpose
    frame = _open(
        page,
        host,
        id=1,
        identifier="learner-1",
        clientIdentifier="acme",
        options='{"color":"%23C4BCFC","feedback":true}',
    )
    # the cloud player's landmark classes, which partners' UI tests wait for
    frame.locator(".modern-course-player").wait_for()
    frame.get_by_role("button", name="Start").click()
    frame.get_by_role("heading", name="Welcome aboard").wait_for()
    assert frame.locator(".modern-course-player .test-mode").is_visible()
    assert frame.locator(".modern-course-player").count() == 1
    page.screenshot(path=str(artifacts / "embed-desktop-screen.png"), full_page=True)
    frame.get_by_role("button", name="Next").click()  # text
    frame.get_by_role("heading", name="Your first day").wait_for()
    frame.locator("body").press("ArrowRight")  # list, by keyboard
    frame.get_by_role("heading", name="Before Friday").wait_for()
    assert frame.get_by_role("button", name="Next").is_disabled()  # checklist needs every item
    for box in frame.get_by_role("checkbox").all():
        box.check()
    frame.get_by_role("button", name="Next").click()
    frame.get_by_role("heading", name="Quick check").wait_for()
    frame.get_by_label("Your buddy").check()
    frame.get_by_role("button", name="Check answer").click()
    frame.get_by_text("Right: your buddy is there for you.").wait_for()
    time.sleep(SESSION_SECONDS * 0.6)  # past at least one silent refresh
    frame.get_by_role("button", name="Finish").click()
    frame.get_by_text("Well done!").wait_for()
    frame.get_by_role("button", name="5 / 5").click()
    page.wait_for_function("window.__msgs.some(m => m.data && m.data.event === 'feedback')", timeout=10000)
    page.screenshot(path=str(artifacts / "embed-desktop-finish.png"), full_page=True)

    msgs = _events(page)
    assert all(isinstance(m["raw"], str) for m in msgs)  # JSON strings on the wire
    assert {m["origin"] for m in msgs} == {appliance.origin}  # from the appliance's origin only
    assert all(m["fromFrame"] for m in msgs)
    seen = [(m["data"]["type"], m["data"]["event"]) for m in msgs]
    for wanted in [
        ("session", "ready"),
        ("course", "start"),
        ("course", "progress"),
        ("screen", "start"),
        ("screen", "complete"),
        ("screen", "end"),
        ("screen", "answer"),
        ("course", "completed"),
        ("course", "feedback"),
    ]:
        assert wanted in seen, wanted
    assert (
        seen.index(("session", "ready"))
        < seen.index(("course", "start"))
        < seen.index(("course", "completed"))
    )
    progress = [m["data"]["data"]["progress"] for m in msgs if m["data"]["event"] == "progress"]
    assert progress == sorted(progress) and len(set(progress)) == len(progress) and progress[-1] == 100
    first_screen = next(m["data"]["data"] for m in msgs if m["data"]["type"] == "screen")
    assert first_screen == {"screenId": 1, "screenIndex": 0, "type": "text"}
    completed = next(m["data"]["data"] for m in msgs if m["data"]["event"] == "completed")
    assert completed == {"progress": 100, "score": 100, "passed": True}

    with appliance.api() as api:
        rows = api.get("/v1/headless/trackings", params={"id": 1, "identifier": "learner-1"}).json()
        assert len(rows) == 1
        row = rows[0]
        assert row["progress_percent"] == 100 and row["completed"] and row["commenced"]
        assert row["score"] == 100 and row["passed"] is True and row["feedback"] == "5"
        assert row["total_time"] >= int(SESSION_SECONDS * 0.6)
        screens = api.get("/v1/headless/screen/trackings", params={"id": 1}).json()
        attempts = next(s for s in screens if s["identifier"] == "learner-1")["attempts"]
        assert {a["screen"] for a in attempts} == {1, 2, 3, 4}
    assert "embed session refused" not in appliance.log()[log_start:]
    assert "/embed/api/session/refresh" in appliance.log()  # the silent refresh happened (its path is logged)


def test_every_screen_type_and_phone_width(browser, host, appliance: Appliance, artifacts) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)  # iPhone 12
    page = context.new_page()
    try:
        frame = _open(
            page, host, id=appliance.all_types_course, identifier="phone-1", options='{"language":"fr"}'
        )
        page.evaluate("document.getElementById('embed').style.width = '360px'")  # a phone-width iframe
        frame.get_by_role("button", name="Commencer").click()
        nxt = frame.get_by_role("button", name="Suivant")
        for title in ("Text", "Process"):
            frame.get_by_role("heading", name=title).wait_for()
            nxt.click()
        frame.get_by_role("heading", name="Checklist").wait_for()
        for box in frame.get_by_role("checkbox").all():
            box.check()
        nxt.click()
        frame.get_by_role("heading", name="Flashcards").wait_for()
        for card in frame.locator("button.card").all():
            card.click()
        assert frame.locator("button.card[aria-pressed=true]").count() == 2
        nxt.click()
        frame.get_by_role("heading", name="List").wait_for()
        nxt.click()
        frame.get_by_role("heading", name="Media").wait_for()
        image = frame.get_by_role("img", name="A diagram")
        assert image.is_visible()
        image.evaluate("img => img.complete || new Promise(r => { img.onload = img.onerror = r; })")
        page.screenshot(path=str(artifacts / "embed-phone-media.png"), full_page=True)
        nxt.click()
        frame.get_by_role("heading", name="Quiz").wait_for()
        frame.get_by_role("radio", name="5").check()  # wrong on purpose
        frame.get_by_role("checkbox", name="2").check()
        frame.get_by_role("checkbox", name="6").check()
        frame.get_by_role("button", name="Vérifier").click()
        frame.get_by_text("It is four.").wait_for()
        page.screenshot(path=str(artifacts / "embed-phone-quiz-feedback.png"), full_page=True)
        frame.get_by_role("button", name="Réessayer").click()
        frame.get_by_role("radio", name="4").check()
        frame.get_by_role("checkbox", name="2").check()
        frame.get_by_role("checkbox", name="6").check()
        frame.get_by_role("button", name="Vérifier").click()
        frame.get_by_text("Yes, four.").wait_for()
        frame.get_by_role("button", name="Terminer").click()
        frame.get_by_text("All done").wait_for()
        page.screenshot(path=str(artifacts / "embed-phone-finish.png"), full_page=True)
        seen = [(m["data"]["type"], m["data"]["event"]) for m in page.evaluate("window.__msgs")]
        assert (
            ("screen", "failed") in seen and ("screen", "retry") in seen and ("course", "completed") in seen
        )
        widths = frame.locator("body").evaluate(
            "b => [document.documentElement.scrollWidth, document.documentElement.clientWidth, window.innerWidth]"
        )
        assert widths[0] <= widths[1] <= 360, widths  # no horizontal scrolling at phone width
    finally:
        context.close()
    with appliance.api() as api:
        row = api.get(
            "/v1/headless/trackings", params={"id": appliance.all_types_course, "identifier": "phone-1"}
        ).json()[0]
        assert row["score"] == 100 and row["passed"] is True and row["language"] == "fr"


def test_no_cookie_set_or_needed(blocked_3pc_context, host, appliance: Appliance) -> None:  # type: ignore[no-untyped-def]
    ctx = blocked_3pc_context
    page = ctx.new_page()
    responses = []
    page.on("response", lambda r: responses.append(r) if r.url.startswith(appliance.origin) else None)
    _open(page, host, id=1, identifier="cookie-1")
    frame_locator = page.frame_locator("#embed")
    frame_locator.get_by_role("button", name="Start").click()
    frame_locator.get_by_role("heading", name="Welcome aboard").wait_for()
    assert responses
    for r in responses:
        assert "set-cookie" not in r.all_headers(), r.url
    frame = next(f for f in page.frames if f.url.startswith(appliance.origin))
    assert frame.evaluate("document.cookie") == ""
    # third-party storage is denied in this profile; either way nothing of ours is stored
    storage = frame.evaluate(
        "() => { try { return localStorage.length + sessionStorage.length } catch (e) { return 'denied' } }"
    )
    assert storage in (0, "denied")
    assert ctx.cookies() == []
    frame.evaluate("document.cookie = 'probe=1; Path=/; SameSite=None; Secure'")  # blocking really is on
    assert frame.evaluate("document.cookie") == ""
    page.close()


def test_reused_refresh_token_ends_in_session_expired(page, host, appliance: Appliance) -> None:  # type: ignore[no-untyped-def]
    exchanged = []
    page.on(
        "response", lambda r: exchanged.append(r.json()) if r.url.endswith("/embed/api/session") else None
    )
    frame = _open(page, host, id=1, identifier="reuse-1")
    refresh_token = exchanged[0]["refreshToken"]
    with appliance.api() as api:
        first = api.post("/embed/api/session/refresh", json={"refreshToken": refresh_token})
        assert first.status_code == 200
        again = api.post("/embed/api/session/refresh", json={"refreshToken": refresh_token})  # reuse
        assert again.status_code == 401 and again.json()["code"] == "UNAUTHORIZED"
        # the whole family is revoked: the rotated token is dead too
        later = api.post("/embed/api/session/refresh", json={"refreshToken": first.json()["refreshToken"]})
        assert later.status_code == 401
    frame.get_by_role("button", name="Start").click()
    page.wait_for_function(
        "window.__msgs.some(m => m.data && m.data.type === 'session' && m.data.event === 'expired')",
        timeout=10000,
    )
    frame.get_by_role("alert").wait_for()


def test_frame_ancestors_blocks_foreign_host(page, host, appliance: Appliance) -> None:  # type: ignore[no-untyped-def]
    with appliance.api() as api:
        assert (
            api.put("/v1/headless/embed/origins", json={"origins": ["https://partner.invalid"]}).status_code
            == 200
        )
        try:
            console: list[str] = []
            page.on("console", lambda m: console.append(m.text))
            with page.expect_event("requestfailed", predicate=lambda r: "/embed/course/" in r.url) as ev:
                page.goto(f"{host.url}/?id=1&identifier=blocked-1")
            assert ev.value.failure == "net::ERR_BLOCKED_BY_RESPONSE"
            page.wait_for_timeout(500)
            assert page.evaluate("window.__msgs") == []
            assert any("frame-ancestors" in t for t in console)
            # the partner sees why in setup/status: the refused origin, and how to allow it
            failure = api.get("/v1/headless/setup/status").json()["lastFailure"]
            origin = host.url.rstrip("/")
            assert "frame-ancestors" in failure["message"] and origin in failure["message"], failure
            assert f"--add {origin}" in failure["fix"], failure
        finally:
            assert api.put("/v1/headless/embed/origins", json={"origins": []}).status_code == 200


def _track(appliance: Appliance, identifier: str, client: str, *events: dict) -> None:  # type: ignore[type-arg]
    """A learner's player events over the embed API, as the player sends them."""
    with appliance.api() as api:
        url = api.post("/v1/headless/embed/course", json={
            "action": "view", "courseId": 1, "identifier": identifier, "clientIdentifier": client}).text
        session = api.post("/embed/api/session", json={"token": url.rsplit("/", 1)[1]}).json()["session"]
        for event in events:
            answer = api.post("/embed/api/track", json=event, headers={"Authorization": f"Bearer {session}"})
            assert answer.status_code == 200, answer.text


def test_analytics_embed_shows_the_tracked_numbers(page, host, appliance: Appliance, artifacts) -> None:  # type: ignore[no-untyped-def]
    client = "analytics-ltd"  # a client of its own: other tests track learners of acme on this server
    _track(appliance, "al-1", client, {"event": "start"}, {"event": "progress", "progress": 40})
    _track(appliance, "al-2", client, {"event": "start"}, {"event": "progress", "progress": 75},
           {"event": "attempt", "screenId": 4, "answers": {"1": 1}}, {"event": "complete"})
    frame = _open(page, host, kind="analytics/course", id=1, clientIdentifier=client)
    frame.get_by_role("table").wait_for()
    page.screenshot(path=str(artifacts / "embed-analytics-course.png"), full_page=True)
    assert frame.get_by_role("heading", level=1).inner_text() == "New starter induction"
    stats = dict(zip(frame.locator(".stat dt").all_inner_texts(), frame.locator(".stat dd").all_inner_texts(), strict=True))
    assert {k: stats[k] for k in ("Learners", "Commenced", "Completed", "Completion rate", "Average progress",
                                  "Average score", "Passed")} == {
        "Learners": "2", "Commenced": "2", "Completed": "1", "Completion rate": "50%",
        "Average progress": "70%", "Average score": "100%", "Passed": "1"}, stats
    bars = frame.locator(".chart-bar").evaluate_all("bars => bars.map(b => b.getAttribute('aria-label'))")
    assert bars == ["0-24%: 0 learners", "25-49%: 1 learners", "50-74%: 0 learners", "75-99%: 0 learners",
                    "100%: 1 learners"], bars
    rows = frame.locator("tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.textContent.trim()))")
    today = time.strftime("%Y-%m-%d", time.gmtime())
    none = "\u2013"  # what the table shows for no score, no pass/fail, not completed
    assert rows == [["al-1", "New starter induction", "40%", none, none, none],
                    ["al-2", "New starter induction", "100%", "100%", "Yes", today]], rows


def test_collection_embed_renders(page, host, appliance: Appliance, artifacts) -> None:  # type: ignore[no-untyped-def]
    with appliance.api() as api:
        ident = api.post("/v1/headless/collection", json={"title": "Starter path", "courseIds": [1]}).json()["id"]
    frame = _open(page, host, kind="collection", id=ident, clientIdentifier="acme")
    frame.get_by_role("button", name="Open: New starter induction").wait_for()
    page.screenshot(path=str(artifacts / "embed-collection.png"), full_page=True)
