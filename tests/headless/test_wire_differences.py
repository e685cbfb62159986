"""Wire differences partners hit (issue 11): themes paginate like every list, duplication with an
owner creates that user and client."""

from __future__ import annotations

import httpx

from tests.helpers import Install, Server


def _error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert set(response.json()) == {"statusCode", "code", "error", "message"}


def test_themes_paginate_zero_based_and_capped(api: tuple[Server, Install]) -> None:
    server, install = api
    c = server.client(install.test_key)
    for n in range(3):
        assert c.post("/v1/headless/themes", json={"name": f"Paged theme {n}"}).status_code == 200
    every = c.get("/v1/headless/themes").json()
    assert len(every) >= 3
    first = c.get("/v1/headless/themes", params={"page": 0, "length": 2}).json()
    second = c.get("/v1/headless/themes", params={"page": 1, "length": 2}).json()
    assert [t["id"] for t in first] == [t["id"] for t in every[:2]]
    assert [t["id"] for t in second] == [t["id"] for t in every[2:4]]
    assert c.get("/v1/headless/themes", params={"page": 1000}).json() == []
    assert c.get("/api/v1/headless/themes", params={"length": 1000}).json() == every  # capped at 100
    _error(c.get("/v1/headless/themes", params={"page": -1}), 422)
    _error(c.get("/v1/headless/themes", params={"length": "x"}), 422)


def test_duplicate_with_an_owner_creates_the_user_and_client(api: tuple[Server, Install]) -> None:
    server, install = api
    c = server.client(install.test_key)
    _error(c.get("/v1/headless/user/dup-teacher"), 404)
    _error(c.get("/v1/headless/client/dup-site"), 404)
    copy = c.post("/v1/headless/course/1/duplicate", json={"identifier": "dup-teacher", "clientIdentifier": "dup-site"})
    assert copy.status_code == 200, copy.text
    assert copy.json()["identifier"] == "dup-teacher" and copy.json()["clientIdentifier"] == "dup-site"
    user = c.get("/v1/headless/user/dup-teacher")
    assert user.status_code == 200, user.text
    assert user.json()["identifier"] == "dup-teacher"
    assert c.get("/v1/headless/client/dup-site").status_code == 200
    # a failed duplicate creates nobody
    _error(c.post("/v1/headless/course/424242/duplicate", json={"identifier": "ghost", "clientIdentifier": "ghost-site"}), 404)
    _error(c.get("/v1/headless/user/ghost"), 404)
    _error(c.get("/v1/headless/client/ghost-site"), 404)
    _error(c.post("/v1/headless/course/1/duplicate", json={"identifier": "x" * 256}), 422)


def test_frame_ancestors_refusal_is_the_last_failure(api: tuple[Server, Install]) -> None:
    """A browser shows a refused frame blank; setup/status names the refused origin and the fix."""
    server, install = api
    production = server.client(server.extra["production_key"])
    assert production.put("/v1/headless/embed/origins", json={"origins": ["https://partner.example"]}).status_code == 200
    url = production.post("/v1/headless/embed/course", json={"action": "edit"})
    assert url.status_code == 200, url.text
    framed = {"sec-fetch-dest": "iframe", "sec-fetch-mode": "navigate"}

    def last_failure() -> dict | None:  # type: ignore[type-arg]
        status = production.get("/v1/headless/setup/status")
        assert status.status_code == 200, status.text
        return status.json()["lastFailure"]  # type: ignore[no-any-return]

    _error(production.get("/v1/headless/courses/424242"), 404)
    before = last_failure()
    assert before is not None and before["status"] == 404
    with server.client() as browser:
        # framed by an allowed origin, or not framed at all: nothing to report
        assert browser.get(url.text, headers={**framed, "referer": "https://partner.example/lms/page"}).status_code == 200
        assert browser.get(url.text, headers={"referer": "https://evil.example/"}).status_code == 200
        assert last_failure() == before
        # framed by another origin: the browser refuses it, and the partner can see why
        assert browser.get(url.text, headers={**framed, "referer": "https://other.example:8443/course?id=1"}).status_code == 200
    failure = last_failure()
    assert failure is not None and failure != before
    assert "frame-ancestors" in failure["message"] and "https://other.example:8443" in failure["message"]
    assert "production" in failure["message"] and "eyJ" not in failure["route"]  # no token in the record
    assert "--add https://other.example:8443" in failure["fix"] and "embed/origins" in failure["fix"]
    # the test environment (no allowlist: any origin may frame) records nothing
    test_key = server.client(install.test_key)
    _error(test_key.get("/v1/headless/courses/424242"), 404)
    view = test_key.post("/v1/headless/embed/course", json={"action": "view", "courseId": 1}).text
    with server.client() as browser:
        assert browser.get(view, headers={**framed, "referer": "https://anyone.example/"}).status_code == 200
    assert test_key.get("/v1/headless/setup/status").json()["lastFailure"]["status"] == 404


def test_usage_clients_length_counts_rows_and_every_metric_appears(api: tuple[Server, Install]) -> None:
    server, install = api
    c = server.client(install.test_key)
    metrics = {"identified_recipients", "anonymous_recipients", "narration_tokens", "image_generations"}
    every = c.get("/v1/headless/usage/clients", params={"length": 100}).json()["data"]
    clients = {row["clientIdentifier"] for row in every}
    assert len(clients) >= 2 and len(every) == len(clients) * len(metrics) <= 100
    for client in clients:
        assert {row["metric"] for row in every if row["clientIdentifier"] == client} == metrics
    for length in (1, 3, 5):
        paged: list[dict] = []  # type: ignore[type-arg]
        for page in range(100):
            rows = c.get("/v1/headless/usage/clients", params={"length": length, "page": page}).json()["data"]
            assert len(rows) <= length
            paged += rows
            if len(rows) < length:
                break
        assert paged == every, length
