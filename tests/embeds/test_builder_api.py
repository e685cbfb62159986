"""The builder's session API over HTTP (no browser), on a real server with the test model: typed
request bodies refused with the builder's own words and statuses, and document uploads limited by
`documents.max_bytes` alone (the builder has no limit of its own)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.embeds.builder_support import api_client, claims_of
from tests.helpers import Install, Server, init_data_dir, start_server

MIB = 1024 * 1024
DOCUMENT_MAX_BYTES = 12 * MIB  # above the 10 MB the builder used to allow on its own


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Install]]:
    install = init_data_dir(tmp_path_factory.mktemp("builder-api") / "data")
    srv = start_server(install.data_dir, env={"APPLIANCE_DOCUMENTS_MAX_BYTES": str(DOCUMENT_MAX_BYTES)})
    yield srv, install
    srv.stop()


def _author(server: tuple[Server, Install], identifier: str, options: dict[str, Any] | None = None) -> httpx.Client:
    """An edit session on a new course of client acme (as the builder's iframe holds it)."""
    srv, _ = server
    url = api_client(server).post("/v1/headless/embed/course", json={
        "action": "edit", "identifier": identifier, "clientIdentifier": "acme", "options": options or {}})
    assert url.status_code == 200, url.text
    assert claims_of(url.text)["course"]
    opened = httpx.post(f"{srv.url}/embed/api/session", json={"token": url.text.rsplit("/", 1)[1]}, timeout=30)
    assert opened.status_code == 200, opened.text
    return httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {opened.json()['session']}"}, timeout=60)


def _refused(response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"statusCode", "code", "error", "message"} and body["statusCode"] == status, body
    assert words in body["message"], body


def test_bodies_are_typed_and_refused_with_the_builders_words(server: tuple[Server, Install]) -> None:
    with _author(server, "author-bodies") as author:
        revision = author.get("/embed/api/builder/").json()["revision"]
        save = "/embed/api/builder/"
        _refused(author.put(save, json=[1]), 422, "The body must be a JSON object")
        _refused(author.put(save, json={}), 428, "Send the revision you edited")
        _refused(author.put(save, json={"revision": revision}), 422, "content must be an object")
        _refused(author.put(save, json={"revision": revision, "content": []}), 422, "content must be an object")
        _refused(author.put(save, json={"revision": revision, "content": {}, "title": "  "}), 422,
                 "title must be text of 1 to 200 characters")
        _refused(author.put(save, json={"revision": revision, "content": {}, "description": 3}), 422,
                 "description must be text of at most 2000 characters")
        _refused(author.put(save, json={"revision": revision, "content": {}, "themeId": "blue"}), 422,
                 "themeId must be a theme id or null")
        _refused(author.put(save, json={"revision": revision, "content": {}, "themeId": 99999}), 404, "Theme not found")
        saved = author.put(save, json={"revision": revision, "content": {}, "title": "Ladders", "unknown": 1})
        assert saved.status_code == 200 and saved.json()["course"]["title"] == "Ladders", saved.text

        _refused(author.post("/embed/api/builder/ai/course", json={}), 422, "Describe the course in a prompt")
        _refused(author.post("/embed/api/builder/ai/course", json={"prompt": "   "}), 422, "Describe the course")
        _refused(author.post("/embed/api/builder/ai/course", json={"prompt": "Ladders", "mode": "merge"}), 422,
                 "mode must be append or replace")
        _refused(author.post("/embed/api/builder/ai/course", json={"prompt": "Ladders", "screenCount": 26}), 422,
                 "screenCount must be a number from 1 to 25")
        _refused(author.post("/embed/api/builder/ai/course", json={"prompt": "Ladders", "tone": "x" * 201}), 422,
                 "tone must be text of at most 200 characters")
        _refused(author.post("/embed/api/builder/ai/screen", json={"type": "poem"}), 422, "type must be one of")
        _refused(author.post("/embed/api/builder/ai/screen", json={"type": "text"}), 422, "Give a prompt")
        _refused(author.post("/embed/api/builder/ai/screen", json={"fromCourse": True}), 422,
                 "The course has no content yet")
        _refused(author.post("/embed/api/builder/ai/quiz", json={"prompt": "x", "questionCount": 11}), 422,
                 "questionCount must be a number from 1 to 10")
        _refused(author.post("/embed/api/builder/ai/refine", json={"text": ""}), 422, "Select some text")
        _refused(author.post("/embed/api/builder/ai/refine", json={"text": "Hi", "operation": "poem"}), 422,
                 "operation must be one of")
        _refused(author.post("/embed/api/builder/documents/course", json={"kind": "poster"}), 422,
                 "kind must be document or presentation")
        _refused(author.post("/embed/api/builder/documents/course", json={}), 422, "documentId is required")
        _refused(author.post("/embed/api/builder/documents/course", json={"documentId": 99999}), 404,
                 "Document not found")
        # options the session was not given still answer 403 before any body is read
        _refused(author.post("/embed/api/builder/ai/translate", json=[1]), 403, "Translations are not enabled")
        _refused(author.post("/embed/api/builder/ai/narrate", json=[1]), 403, "Narration is not enabled")


def test_translate_refuses_a_language_it_does_not_know_like_the_headless_route(
    server: tuple[Server, Install],
) -> None:
    with _author(server, "author-languages", {"translations": True}) as author:
        _refused(author.post("/embed/api/builder/ai/translate", json={"language": "xx"}), 422,
                 "a known language (ISO 639-1)")
        _refused(author.post("/embed/api/builder/ai/translate", json={"language": "fr_FR"}), 422, "a code such as")


def test_document_uploads_are_limited_by_documents_max_bytes_alone(server: tuple[Server, Install]) -> None:
    with _author(server, "author-documents") as author:
        upload = {"X-Filename": "notes.txt", "Content-Type": "application/octet-stream"}
        # 11 MiB: more than the builder once allowed, less than documents.max_bytes. The reader gets
        # it and refuses it for its length in pages (a documents rule): it is not too large.
        text = (b"Keep the ladder's feet on firm ground. " * (11 * MIB // 39 + 1))[: 11 * MIB]
        read = author.post("/embed/api/builder/documents", content=text, headers=upload)
        _refused(read, 422, "pages; the limit is")
        too_large = author.post("/embed/api/builder/documents", content=b"x" * (DOCUMENT_MAX_BYTES + 1), headers=upload)
        _refused(too_large, 413, f"larger than the document limit of {DOCUMENT_MAX_BYTES} bytes")
        _refused(author.post("/embed/api/builder/documents", content=b"", headers=upload), 422, "The upload is empty")
        small = author.post("/embed/api/builder/documents", content=b"Ladders need firm ground.\n" * 20, headers=upload)
        assert small.status_code == 201 and small.json()["documentId"] == small.json()["id"], small.text
