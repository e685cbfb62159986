"""Language variants in the player: the embed's `language` option, the default language, tracking."""

from __future__ import annotations

from typing import Any

import httpx

from tests.embeds.conftest import Appliance


def _session(api: httpx.Client, course_id: int, identifier: str, options: dict[str, Any] | None = None) -> dict[str, str]:
    body: dict[str, Any] = {"action": "view", "courseId": course_id, "identifier": identifier,
                            "clientIdentifier": "acme"}
    if options is not None:
        body["options"] = options
    url = api.post("/v1/headless/embed/course", json=body)
    assert url.status_code == 200, url.text
    session = api.post("/embed/api/session", json={"token": url.text.rsplit("/", 1)[1]})
    assert session.status_code == 200, session.text
    return {"Authorization": f"Bearer {session.json()['session']}"}


def _played(api: httpx.Client, bearer: dict[str, str]) -> dict[str, Any]:
    response = api.get("/embed/api/course", headers=bearer)
    assert response.status_code == 200, response.text
    course: dict[str, Any] = response.json()["course"]
    return course


def test_the_language_option_picks_the_published_variant(appliance: Appliance) -> None:
    course_id = appliance.bilingual_course
    with appliance.api() as api:
        english = _played(api, _session(api, course_id, "lang-en"))
        assert (english["id"], english["language"], english["title"]) == (course_id, "en", "Fire safety")

        bearer = _session(api, course_id, "lang-fr", {"language": "fr-CA"})  # the primary subtag matches
        french = _played(api, bearer)
        assert (french["id"], french["language"], french["title"]) == (course_id, "fr", "Sécurité incendie")
        quiz = french["screens"][1]["content"]["questions"][0]
        assert [a["text"] for a in quiz["answers"]] == ["Verte", "Rouge"]
        assert all("correct" not in a for a in quiz["answers"])  # graded on the server

        # graded against the French variant; tracked on the course itself, in French
        graded = api.post("/embed/api/track", headers=bearer,
                          json={"event": "attempt", "screenId": 2, "answers": {"1": [1]}})
        assert graded.status_code == 200, graded.text
        assert graded.json()["score"] == 100 and graded.json()["passed"] is True
        assert graded.json()["results"][0]["feedback"] == "Verte!"
        rows = api.get("/v1/headless/trackings", params={"id": course_id}).json()
        row = next(r for r in rows if r["identifier"] == "lang-fr")
        assert row["language"] == "fr"

        # a language without a variant shows the course itself
        assert _played(api, _session(api, course_id, "lang-de", {"language": "de"}))["language"] == "en"


def test_the_default_language_is_what_learners_see_first(appliance: Appliance) -> None:
    course_id = appliance.bilingual_course
    with appliance.api() as api:
        try:
            chosen = api.post(f"/v1/headless/translation/default/{course_id}/fr")
            assert chosen.status_code == 200, chosen.text
            assert _played(api, _session(api, course_id, "default-1"))["title"] == "Sécurité incendie"
            # the option still wins over the default
            assert _played(api, _session(api, course_id, "default-2", {"language": "en"}))["language"] == "en"
        finally:
            assert api.post(f"/v1/headless/translation/default/{course_id}/en").status_code == 200
        assert _played(api, _session(api, course_id, "default-3"))["language"] == "en"


def test_hostile_language_options_play_the_course_itself(appliance: Appliance) -> None:
    course_id = appliance.bilingual_course
    with appliance.api() as api:
        for value in (["fr"], 7, "", "fr" + "x" * 5000, "' OR 1=1 --"):
            body = {"action": "view", "courseId": course_id, "identifier": "hostile", "options": {"language": value}}
            minted = api.post("/v1/headless/embed/course", json=body)
            if minted.status_code != 200:  # refused at minting: a clear 4xx in the error shape
                assert minted.status_code == 422 and "message" in minted.json(), minted.text
                continue
            session = api.post("/embed/api/session", json={"token": minted.text.rsplit("/", 1)[1]})
            bearer = {"Authorization": f"Bearer {session.json()['session']}"}
            assert _played(api, bearer)["language"] == "en", value

