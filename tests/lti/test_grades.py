"""Login -> launch -> the player in Chromium -> completion -> the grade at the platform's AGS
endpoint, posted by the appliance's grade worker through the library's AGS client."""

from __future__ import annotations

from tests.lti.conftest import LtiSetup


def test_completion_in_the_player_posts_the_grade(browser, lti: LtiSetup) -> None:  # type: ignore[no-untyped-def]
    platform = lti.platform
    platform.score_arrived.clear()
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{platform.url}/start")  # the LMS's link: login -> auth -> launch -> player
        page.get_by_role("button", name="Start").click()
        page.get_by_role("heading", name="Only screen").wait_for()
        assert page.url.startswith(f"{lti.server.url}/embed/course/")
        page.get_by_role("button", name="Finish").click()
        page.get_by_text("All done").wait_for()
    finally:
        context.close()
    assert platform.score_arrived.wait(20), "no grade reached the platform"
    score = platform.scores[-1]
    assert score["type"] == "application/vnd.ims.lis.v1.score+json"
    assert score["userId"] == "learner-1"
    assert score["activityProgress"] == "Completed" and score["gradingProgress"] == "FullyGraded"
    assert score["scoreMaximum"] == 100 and score["scoreGiven"] == 100
    assert platform.score_auth[-1].removeprefix("Bearer ") in platform.tokens  # a token the platform issued
