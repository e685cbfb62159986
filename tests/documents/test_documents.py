"""Documents through the real server: upload and extraction of every type, hostile files, encryption
at rest and crypto-shredding, and courses from documents with the small model (SmolLM2-135M)."""

from __future__ import annotations

import itertools
import json
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.documents import fixtures as fx
from tests.helpers import Install, Server, cli, init_data_dir, start_server

TYPES = {"text", "process", "checklist", "flashcards", "list"}
SECTIONS = 4  # the test server cuts long documents into 4 sections (one digest each)


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Install]]:
    install = init_data_dir(tmp_path_factory.mktemp("documents") / "data")
    server = start_server(install.data_dir, env={"APPLIANCE_DOCUMENTS_MAX_SUMMARY_SECTIONS": str(SECTIONS)})
    yield server, install
    server.stop()


def upload(c: httpx.Client, name: str, data: bytes, **form: str) -> httpx.Response:
    return c.post("/v1/headless/documents", files={"file": (name, data, "application/octet-stream")},
                  data=form, timeout=120)


def object_files(data_dir: Path) -> set[Path]:
    root = data_dir / "objects"
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def _runtime(install: Install) -> Any:
    from appliance import config
    from appliance.runtime import open_runtime

    return open_runtime(config.load(install.data_dir))


def test_every_type_is_extracted_chunked_and_searchable(docs_server: tuple[Server, Install]) -> None:
    server, install = docs_server
    c = server.client(install.test_key)
    expected = {
        "handbook.pdf": (fx.long_pdf(120), "pdf", 120),
        "hygiene.docx": (fx.make_docx(), "docx", 1),
        "height.pptx": (fx.make_pptx(), "pptx", len(fx.DEFAULT_SLIDES)),
        "notes.txt": (b"Plain notes about ladders.\n\nSecond paragraph about forklifts.", "text", 1),
        "guide.md": (b"# Guide\n\nSome *markdown* text about gloves.\n\n## Part two\n\nMore text.", "markdown", 1),
    }
    made = {}
    for name, (data, kind, pages) in expected.items():
        response = upload(c, name, data, identifier="author-1")
        assert response.status_code == 201, response.text
        record = response.json()
        assert (record["type"], record["pages"], record["filename"]) == (kind, pages, name)
        assert record["chars"] > 0 and record["owner"] == "author-1" and record["id"]
        made[name] = record
    listing = c.get("/v1/headless/documents", params={"identifier": "author-1"}).json()
    assert {d["filename"] for d in listing} >= set(expected)
    assert c.get("/v1/headless/documents", params={"identifier": "someone-else"}).json() == []
    pdf = made["handbook.pdf"]
    assert c.get(f"/v1/headless/documents/{pdf['id']}").json()["title"] == "Site safety handbook"
    hits = c.get(f"/v1/headless/documents/{pdf['id']}/search", params={"q": "marker077 inspection"}).json()
    assert hits and 77 in range(hits[0]["pages"][0], hits[0]["pages"][1] + 1), hits[:1]
    assert all(len(h["text"]) <= 2100 for h in hits)
    # FTS query syntax in the query is data, not operators
    assert c.get(f"/v1/headless/documents/{pdf['id']}/search", params={"q": 'NEAR("x" AND) *'}).status_code == 200
    slides = c.get(f"/v1/headless/documents/{made['height.pptx']['id']}/search", params={"q": "harness lanyard"})
    assert slides.json()[0]["heading"] == "Fitting a harness"
    assert c.get("/v1/headless/documents/99999").status_code == 404


HOSTILE: list[tuple[str, str, Any, int, str]] = [
    ("malformed pdf", "broken.pdf", lambda: b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 9 0 R >> trash", 422,
     "malformed"),
    ("truncated pdf", "half.pdf", lambda: fx.long_pdf(20)[:3000], 422, "malformed"),
    ("encrypted pdf", "secret.pdf", fx.encrypted_pdf, 422, "password"),
    ("zip bomb as docx", "report.docx", fx.zip_bomb_docx, 422, "zip bomb"),
    ("xxe in docx", "xxe.docx", fx.xxe_docx, 422, "DTD"),
    ("billion laughs in docx", "lol.docx", fx.laughs_docx, 422, "entit"),
    ("pdf named docx", "cv.docx", lambda: fx.make_pdf([["hello"]]), 415, "content is PDF"),
    ("docx named pdf", "cv.pdf", fx.make_docx, 415, "content is DOCX"),
    ("image named pdf", "photo.pdf", lambda: b"\x89PNG\r\n\x1a\n" + bytes(200), 415, "Unrecognised"),
    ("executable extension", "run.exe", lambda: b"MZ\x90\x00" + bytes(100), 415, "Unsupported file type"),
    ("zip that is not office", "data.docx", lambda: fx.make_docx(document_xml=None, extra={})
     .replace(b"word/document.xml", b"word/documenX.xml"), 415, "not a Word"),
    ("empty file", "empty.txt", lambda: b"", 422, "empty"),
    ("pdf without text", "blank.pdf", lambda: fx.make_pdf([[], []]), 422, "No text"),
]


@pytest.mark.parametrize(("case", "name", "make", "status", "words"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_documents_are_refused_cleanly(
    docs_server: tuple[Server, Install], case: str, name: str, make: Any, status: int, words: str
) -> None:
    server, install = docs_server
    c = server.client(install.test_key)
    before_docs = len(c.get("/v1/headless/documents").json())
    before_files = object_files(install.data_dir)
    response = upload(c, name, make())
    assert response.status_code == status, (case, response.text)
    body = response.json()
    assert body["statusCode"] == status and words.lower() in body["message"].lower(), body
    assert c.get("/health").status_code == 200  # the server stays up
    assert len(c.get("/v1/headless/documents").json()) == before_docs  # nothing half-written
    assert object_files(install.data_dir) == before_files


def test_upload_limits_and_form_errors(docs_server: tuple[Server, Install]) -> None:
    server, install = docs_server
    c = server.client(install.test_key)
    # larger than the global 10 MiB body limit, within the documents limit: it reaches the reader,
    # which counts 3,000 characters a page for text
    big = (b"safety " * 1_700_000)[: 11 * 1024 * 1024]
    response = upload(c, "big.txt", big)
    assert response.status_code == 422 and "3845 pages" in response.json()["message"], response.text[:300]
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as raw:  # declared, not sent
        raw.sendall(
            b"POST /v1/headless/documents HTTP/1.1\r\nHost: x\r\nAuthorization: " + install.test_key.encode()
            + b"\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 41943040\r\n\r\n"
        )
        answer = ""
        while "bytes" not in answer and (part := raw.recv(65536)):
            answer += part.decode()
    assert answer.startswith("HTTP/1.1 413") and "33619968 bytes" in answer, answer
    # other routes keep the global limit
    assert c.post("/v1/headless/courses", content=b"{" + b" " * (11 * 1024 * 1024) + b"}",
                  headers={"content-type": "application/json"}).status_code == 413
    assert c.post("/v1/headless/documents", json={"file": "x"}).status_code == 415
    missing = c.post("/v1/headless/documents", files={"other": ("a.txt", b"hello")})
    assert missing.status_code == 422 and "file" in missing.json()["message"]


def test_original_is_encrypted_at_rest_and_delete_shreds_it(docs_server: tuple[Server, Install]) -> None:
    from appliance.storage import objects

    server, install = docs_server
    c = server.client(install.test_key)
    marker = b"ZEBRA-CROSSING-7731-plaintext-marker"
    before = object_files(install.data_dir)
    record = upload(c, "secret.txt", b"Road safety notes. " + marker + b" Look both ways.").json()
    (new_file,) = object_files(install.data_dir) - before
    time.sleep(1.5)  # let the change log ship, so backups are checked too
    for path in install.data_dir.rglob("*"):
        if path.is_file():
            assert marker not in path.read_bytes(), f"plaintext in {path}"
    runtime = _runtime(install)
    try:
        store = runtime.keystore
        assert marker in b"".join(objects.decrypt_file(new_file, store))
        kept = new_file.with_name("copy-of-object")
        shutil.copy(new_file, kept)  # e.g. a copy in someone's backup
        assert c.delete(f"/v1/headless/documents/{record['id']}").json() == {"id": record["id"], "deleted": True}
        assert not new_file.exists()
        with pytest.raises(objects.ObjectError):
            b"".join(objects.decrypt_file(kept, store))
        db = runtime.environment(install.workspace_id, "test").read()
        assert db.execute("SELECT count(*) FROM document_chunks WHERE document_id = ?", [record["id"]]).fetchone()[0] == 0
        assert db.execute(
            "SELECT count(*) FROM document_chunks_fts WHERE document_chunks_fts MATCH 'zebra'").fetchone()[0] == 0
    finally:
        runtime.close()
    assert c.get(f"/v1/headless/documents/{record['id']}").status_code == 404
    assert c.delete(f"/v1/headless/documents/{record['id']}").status_code == 404


def test_documents_need_the_authoring_entitlement(docs_server: tuple[Server, Install]) -> None:
    server, install = docs_server
    ws = int(cli("workspace", "create", "--name", "Viewer only", data_dir=install.data_dir).stdout)
    key = cli("key", "create", "--workspace", str(ws), "--mode", "test", data_dir=install.data_dir).stdout.strip()
    cli("workspace", "entitlement", "--workspace", str(ws), "api_authoring", "off", data_dir=install.data_dir)
    c = server.client(key)
    assert upload(c, "a.txt", b"hello there").status_code == 403
    assert c.get("/v1/headless/documents").status_code == 403
    assert c.post("/v1/headless/generate/course/document", json={"documentId": 1}).status_code == 403


def _follow(c: httpx.Client, job_id: int) -> list[dict[str, Any]]:
    events = []
    with c.stream("GET", f"/v1/headless/jobs/{job_id}/events", timeout=900) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line[5:]))
                if events[-1]["type"] in ("succeeded", "failed", "cancelled"):
                    break
    return events


def test_a_long_pdf_becomes_a_course_covering_every_section(docs_server: tuple[Server, Install]) -> None:
    server, install = docs_server
    c = server.client(install.test_key)
    started = time.monotonic()
    record = upload(c, "handbook-long.pdf", fx.long_pdf(120)).json()
    job = c.post("/v1/headless/generate/course/document",
                 json={"documentId": record["id"], "screenCount": 2, "identifier": "author-2",
                       "clientIdentifier": "acme"}, headers={"Prefer": "respond-async"})
    assert job.status_code == 202, job.text
    events = _follow(c, job.json()["id"])
    assert events[-1]["type"] == "succeeded", (events[-1]["job"].get("error"), server.log()[-3000:])
    progress = [e for e in events if e["type"] == "progress" and e.get("data")]
    first_screen = next(i for i, e in enumerate(progress) if "screen" in e["data"])
    sections = [e["data"] for e in progress[:first_screen] if "section" in e["data"]]
    # map: every page of the document is in exactly one summarised section, in order
    assert len(sections) == SECTIONS
    assert sections[0]["pages"][0] == 1 and sections[-1]["pages"][1] == 120
    for a, b in itertools.pairwise(sections):
        assert b["pages"][0] == a["pages"][1] + 1
    # reduce: the plan was made from all section summaries
    outline = next(e["data"] for e in progress if "objectives" in e["data"])
    assert len(outline["sections"]) == SECTIONS and 1 <= len(outline["objectives"]) <= 3
    result = events[-1]["job"]["result"]
    print(f"upload to first screen: {time.monotonic() - started:.1f}s")
    course = c.get(f"/v1/headless/courses/{result['courseId']}").json()
    assert course["identifier"] == "author-2" and course["clientIdentifier"] == "acme"
    assert len(course["screens"]) == 2 and {s["type"]["name"] for s in course["screens"]} <= TYPES
    assert set(result["unsupported"]) <= {s["id"] for s in course["screens"]}
    runtime = _runtime(install)
    try:
        db = runtime.environment(install.workspace_id, "test").read()
        draft = json.loads(db.execute("SELECT draft FROM courses WHERE id = ?", [result["courseId"]]).fetchone()[0])
        rows = db.execute("SELECT page_start, page_end, summary, model FROM document_sections "
                          "WHERE document_id = ? ORDER BY seq", [record["id"]]).fetchall()
    finally:
        runtime.close()
    assert draft["objectives"] and all(s["objective"] in draft["objectives"] for s in draft["screens"])
    assert [s["id"] for s in draft["screens"] if s.get("unsupported")] == result["unsupported"]
    assert [(r[0], r[1]) for r in rows] == [tuple(s["pages"]) for s in sections] and all(r[2] for r in rows)
    # the section digests are the document's own sentences (extractive, no model), each from its pages
    lines = {n: fx.page_text(n) for n in range(1, 121)}
    for first, last, summary, model in rows:
        assert model == "extractive"
        rest = summary
        for line in sorted({line for n in range(first, last + 1) for line in lines[n]}, key=len, reverse=True):
            rest = rest.replace(line, "")
        assert summary and not rest.strip(), (summary, rest)


def test_instructions_inside_a_document_are_ignored(docs_server: tuple[Server, Install]) -> None:
    server, install = docs_server
    c = server.client(install.test_key)
    record = upload(c, "kitchen.md", fx.INJECTION_TEXT.encode()).json()
    response = c.post("/v1/headless/generate/course/document",
                      json={"documentId": record["id"], "screenCount": 2, "prompt": "Kitchen safety basics"},
                      timeout=900)
    assert response.status_code == 200, response.text
    course = response.json()
    assert len(course["screens"]) == 2  # not the 12 the document asks for
    assert {s["type"]["name"] for s in course["screens"]} <= TYPES
    assert all(s["title"] and s["content"] for s in course["screens"])
    assert "<script" not in json.dumps(course).lower()
    assert set(course["unsupportedScreens"]) <= {s["id"] for s in course["screens"]}
    assert course["documentId"] == record["id"]


def test_a_presentation_becomes_one_screen_per_slide_group(docs_server: tuple[Server, Install]) -> None:
    server, install = docs_server
    c = server.client(install.test_key)
    deck = upload(c, "height.pptx", fx.make_pptx()).json()
    pdf = upload(c, "short.pdf", fx.make_pdf([["A short PDF about gloves."]])).json()
    wrong = c.post("/v1/headless/generate/course/presentation", json={"documentId": pdf["id"]})
    assert wrong.status_code == 422 and "pptx" in wrong.json()["message"].lower()
    assert c.post("/v1/headless/generate/course/document", json={"documentId": 99999}).status_code == 404
    response = c.post("/v1/headless/generate/course/presentation",
                      json={"documentId": deck["id"], "screenCount": 2}, timeout=900)
    assert response.status_code == 200, response.text
    screens = response.json()["screens"]
    assert [s["title"] for s in screens] == ["Working at height", "Setting up"]
    assert [s["description"] for s in screens] == ["Slides 1-3", "Slides 4-7"]


def test_a_document_course_of_five_screens_has_the_frame_and_passes_the_gate(
    docs_server: tuple[Server, Install],
) -> None:
    """A document course goes through the course writer: opening screen, planned screens written from
    the document (each with its objective and the support check), knowledge check, key takeaways, and
    the gate's leftover flags in the job result."""
    server, install = docs_server
    c = server.client(install.test_key)
    record = upload(c, "handbook.pdf", fx.long_pdf(12)).json()
    job = c.post("/v1/headless/generate/course/document", json={"documentId": record["id"], "screenCount": 5},
                 headers={"Prefer": "respond-async"})
    assert job.status_code == 202, job.text
    events = _follow(c, job.json()["id"])
    assert events[-1]["type"] == "succeeded", (events[-1]["job"].get("error"), server.log()[-3000:])
    result = events[-1]["job"]["result"]
    assert isinstance(result["flags"], list) and all({"rule", "screen", "detail"} <= set(f) for f in result["flags"])
    course = c.get(f"/v1/headless/courses/{result['courseId']}").json()
    screens = course["screens"]
    assert screens[0]["title"] == "Why this matters" and screens[-1]["title"] == "Key takeaways"
    assert screens[3]["type"]["name"] == "quiz"
    planned = screens[1:3]
    assert all(s["type"]["name"] in TYPES for s in planned)
    assert set(result["unsupported"]) <= {s["id"] for s in planned}  # the frame is not checked against the document
