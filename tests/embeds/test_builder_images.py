"""A screen's image in the builder, in real Chromium (issue 15; docs/embeds.md "Images"), with the
real server and the real test model (SmolLM2-135M): "Illustrate this screen" shows a preview with the
alt text, undo takes it away, the author's own image replaces it and gets their alt text, "Remove
image" and Ctrl+Z, "Illustrate all screens" as a job, the course cover likewise; then the preview (the player) shows the image
with its alt text, passes axe and fits 320 px. Focus is checked after each action (never <body>)."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

import httpx

from appliance.images import uploads
from tests.embeds.a11y import axe_violations
from tests.embeds.builder_support import api_client, claims_of, open_builder, wait_saved
from tests.helpers import Install, Server
from tests.images.test_uploads import (
    BAD,
    JPEG,
    PNG,
    SECRET,
    SVG_NS,
    WEBP,
    jpeg_with_exif,
    png_with_text,
    webp_with_exif,
)

JOB_MS = 300_000  # the tiny model on a machine shared with other test runs
SCREENS = [
    {"id": 1, "type": "text", "title": "Wash your hands", "content": {"html": "<p>Use soap and warm water for twenty seconds.</p>"}},
    {"id": 2, "type": "list", "title": "Clean surfaces", "content": {"items": [{"title": "Wipe the bench", "description": ""}]}},
]
FOCUSED = """() => { const a = document.activeElement; if (!a || a === document.body) return "BODY";
  return (a.closest('.image-alt') ? 'alt:' : '') + (a.dataset.image || a.dataset.cover || a.tagName); }"""
OVERFLOW = "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"


def _png(width: int = 8, height: int = 6) -> bytes:
    """A small red PNG."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    rows = b"".join(b"\0" + b"\xd0\x20\x20" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def _course(server: tuple[Server, Install], identifier: str) -> tuple[int, httpx.Client]:
    srv, _ = server
    minted = api_client(server).post("/v1/headless/embed/course", json={
        "action": "edit", "identifier": identifier, "clientIdentifier": "acme"})
    assert minted.status_code == 200, minted.text
    course = int(claims_of(minted.text)["course"])
    opened = httpx.post(f"{srv.url}/embed/api/session", json={"token": minted.text.rsplit("/", 1)[1]}, timeout=30)
    assert opened.status_code == 200, opened.text
    author = httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {opened.json()['session']}"}, timeout=60)
    revision = author.get("/embed/api/builder/").json()["revision"]
    saved = author.put("/embed/api/builder/", json={"revision": revision, "title": "Kitchen hygiene",
                                                    "content": {"screens": SCREENS}})
    assert saved.status_code == 200, saved.text
    return course, author


def _stored(data_dir: Path) -> int:
    return sum(1 for p in (data_dir / "objects").rglob("*") if p.is_file()) if (data_dir / "objects").exists() else 0


def _screens(author: httpx.Client) -> list[dict[str, Any]]:
    screens: list[dict[str, Any]] = author.get("/embed/api/builder/").json()["course"]["screens"]
    return screens


def test_illustrate_undo_upload_remove_and_illustrate_all(page, sandbox, server, artifacts) -> None:  # type: ignore[no-untyped-def]
    course, author = _course(server, "author-images")
    frame = open_builder(page, sandbox, course=course, action="edit", identifier="author-images", client="acme", options={})
    embed = next(f for f in page.frames if "/embed/course/" in f.url)
    frame.get_by_role("heading", name="Screen 1: Text").wait_for()
    tools = frame.get_by_role("group", name="Screen image")
    assert tools.get_by_text("This screen has no image.").count() == 1

    # 1. Illustrate this screen (from the keyboard): the preview has the model's alt text, which is
    # in the field that now has focus; the draft holds both once saved
    tools.get_by_role("button", name="Illustrate this screen").focus()
    page.keyboard.press("Enter")
    preview = tools.locator(".image-preview img")
    preview.wait_for(timeout=JOB_MS)
    alt_field = tools.get_by_label("Image description (alternative text)")
    alt = alt_field.input_value()
    assert alt.strip() and preview.get_attribute("alt") == alt
    assert embed.evaluate(FOCUSED) == "alt:INPUT"
    assert frame.locator(".toast").get_by_text("Image added to this screen").count() == 1
    wait_saved(frame)
    first = _screens(author)[0]
    assert first["asset"].endswith(".svg") and first["content"]["asset_alt"] == alt
    served = httpx.get(first["asset"], timeout=30)
    assert served.status_code == 200 and served.headers["content-type"].startswith("image/svg+xml")
    page.screenshot(path=str(artifacts / "builder-images-illustrated.png"), full_page=True)

    # 2. Undo (the toast's button): the image is gone, focus on Illustrate
    frame.locator(".toast").get_by_role("button", name="Undo").click()
    tools.get_by_text("This screen has no image.").wait_for()
    assert embed.evaluate(FOCUSED) == "illustrate"
    wait_saved(frame)
    assert "asset" not in _screens(author)[0]

    # 3. the author's own image, then their alt text
    tools.get_by_label("Or upload your own image").set_input_files(
        files=[{"name": "sink.png", "mimeType": "image/png", "buffer": _png()}])
    preview.wait_for()
    assert preview.get_attribute("alt") == "" and embed.evaluate(FOCUSED) == "alt:INPUT"
    page.keyboard.type("A red sink")
    wait_saved(frame)
    first = _screens(author)[0]
    assert first["asset"].endswith(".png") and first["content"]["asset_alt"] == "A red sink"
    assert preview.get_attribute("alt") == "A red sink"

    # 4. Remove, then Ctrl+Z brings it back
    tools.get_by_role("button", name="Remove image").click()
    tools.get_by_text("This screen has no image.").wait_for()
    assert embed.evaluate(FOCUSED) == "illustrate"
    page.keyboard.press("Control+z")
    preview.wait_for()
    assert preview.get_attribute("alt") == "A red sink"

    # 5. Illustrate all screens: a job; the screen with an image keeps it
    frame.get_by_role("button", name="Illustrate all screens").click()
    job = frame.locator(".job")
    job.get_by_role("button", name="Dismiss").wait_for(timeout=JOB_MS)
    assert job.locator("p").first.inner_text().endswith("· Done"), job.inner_text()
    assert job.locator(".generated li").all_inner_texts() == ["Clean surfaces (list, screen 2)"]
    screens = _screens(author)
    assert screens[0]["content"]["asset_alt"] == "A red sink" and screens[0]["asset"] == first["asset"]
    assert screens[1]["asset"].endswith(".svg") and screens[1]["content"]["asset_alt"].strip()
    job.get_by_role("button", name="Dismiss").click()

    # 6. the course cover (Theme & settings): illustrated, undone, then the author's own with their alt text
    frame.get_by_role("tab", name="Theme & settings").click()
    cover_tools = frame.get_by_role("group", name="Course cover")
    cover_tools.get_by_role("button", name="Illustrate the cover").click()
    cover_preview = cover_tools.locator(".image-preview img")
    cover_preview.wait_for(timeout=JOB_MS)
    assert cover_preview.get_attribute("alt").strip() and embed.evaluate(FOCUSED) == "alt:INPUT"
    made = author.get("/embed/api/builder/").json()["course"]
    assert made["image"].endswith(".svg") and made["start"]["image_alt"] == cover_preview.get_attribute("alt")
    frame.locator(".toast").get_by_role("button", name="Undo").click()
    cover_tools.get_by_text("This course has no cover image.").wait_for()
    assert embed.evaluate(FOCUSED) == "illustrate"
    assert author.get("/embed/api/builder/").json()["course"]["image"] is None
    cover_tools.get_by_label("Or upload your own cover image").set_input_files(
        files=[{"name": "kitchen.png", "mimeType": "image/png", "buffer": _png(12, 6)}])
    cover_preview.wait_for()
    page.keyboard.type("A clean kitchen")
    wait_saved(frame)
    made = author.get("/embed/api/builder/").json()["course"]
    assert made["image"].endswith(".png") and made["start"]["image_alt"] == "A clean kitchen"

    # 7. the player (Preview) shows the cover and the screen's image, each with its alt text; axe
    # finds nothing; 320 px fits
    frame.get_by_role("tab", name="Preview").click()
    cover = frame.locator("img.cover-image")
    cover.wait_for()
    assert cover.get_attribute("alt") == "A clean kitchen" and cover.get_attribute("src") == made["image"]
    frame.get_by_role("button", name="Start", exact=True).click()
    shown = frame.locator(".screen-image img")
    shown.wait_for()
    assert shown.get_attribute("alt") == "A red sink" and shown.get_attribute("src") == first["asset"]
    shown.evaluate("(img) => img.complete || new Promise((ok) => img.addEventListener('load', ok, { once: true }))")
    assert shown.evaluate("(img) => img.naturalWidth") == 8
    found = axe_violations(embed)
    assert found == [], json.dumps(found, indent=1)[:3000]
    page.set_viewport_size({"width": 320, "height": 700})
    scroll, client = embed.evaluate(OVERFLOW)
    assert scroll <= client, f"the player scrolls sideways at 320 px ({scroll} > {client})"
    box = shown.bounding_box()
    assert box and box["width"] <= client
    page.screenshot(path=str(artifacts / "builder-images-preview-320.png"), full_page=True)
    author.close()


def test_the_builder_upload_refuses_bad_images_and_stores_clean_ones(server: tuple[Server, Install]) -> None:
    """tests/images/test_uploads.py's inputs through the builder's upload route (a refusal stores
    nothing; a clean image read back is exactly the file without its metadata)."""
    _, install = server
    _course_id, author = _course(server, "author-uploads")
    try:
        before = _stored(install.data_dir)
        for name in ("svg-script", "svg-external-href", "svg-billion-laughs", "svg-element-bomb", "zip-as-png",
                     "png-then-zip", "png-30000"):
            data, status, words = BAD[name]
            # a name and a type that claim a PNG change nothing: the bytes decide
            answer = author.post("/embed/api/builder/media", content=data, headers={"Content-Type": "image/png"})
            assert answer.status_code == status and words in answer.json()["message"], (name, answer.text)
        assert _stored(install.data_dir) == before, "a refused upload left an object behind"

        for data, original, ext, mime in ((jpeg_with_exif(), JPEG, "jpg", "image/jpeg"), (png_with_text(), PNG, "png", "image/png"),
                                          (webp_with_exif(), WEBP, "webp", "image/webp")):
            made = author.post("/embed/api/builder/media", content=data, headers={"Content-Type": "application/octet-stream"})
            assert made.status_code == 201, made.text
            assert made.json()["url"].endswith(f".{ext}") and made.json()["kind"] == "image" and made.json()["bytes"] == len(original)
            served = httpx.get(made.json()["url"], timeout=30)
            assert served.status_code == 200 and served.headers["content-type"] == mime
            assert served.content == original and SECRET not in served.content  # read back: the metadata is gone

        svg = f'<svg {SVG_NS} viewBox="0 0 4 4"><title>Square</title><rect width="4" height="4" fill="#0a5"/></svg>'.encode()
        made = author.post("/embed/api/builder/media", content=svg, headers={"Content-Type": "image/svg+xml"})
        assert made.status_code == 201 and made.json()["url"].endswith(".svg"), made.text
        served = httpx.get(made.json()["url"], timeout=30)
        assert served.status_code == 200 and served.headers["content-type"].startswith("image/svg+xml")
        assert "script-src" not in served.headers["content-security-policy"] and "sandbox" in served.headers["content-security-policy"]
        assert served.content == uploads.sanitise_svg(svg)
        assert _stored(install.data_dir) == before + 4
    finally:
        author.close()


def test_the_illustrate_routes_refuse_what_they_cannot_do(server: tuple[Server, Install]) -> None:
    """No model call: each refusal comes before one (and stores nothing)."""
    srv, install = server
    _course_id, author = _course(server, "author-refusals")
    try:
        before = _stored(install.data_dir)
        answer = author.post("/embed/api/builder/images/screen", json={"screenId": 99})
        assert answer.status_code == 422 and "screenId must be the id of a screen" in answer.json()["message"], answer.text
        answer = author.post("/embed/api/builder/images/screen", json={"screenId": "one"})
        assert answer.status_code == 422 and "screenId must be" in answer.json()["message"], answer.text
        revision = author.get("/embed/api/builder/").json()["revision"]
        pictured = [{**s, "asset": f"{srv.url}/embed/media/1/test/{'0' * 32}.png"} for s in SCREENS]
        saved = author.put("/embed/api/builder/", json={"revision": revision, "content": {"screens": pictured}})
        assert saved.status_code == 200, saved.text
        answer = author.post("/embed/api/builder/images/screens", json={})
        assert answer.status_code == 422 and answer.json()["message"] == "Every screen already has an image", answer.text
        # a cover is one of this workspace and environment's media, nothing else
        for url in ("https://tracker.example/pixel.png", f"{srv.url}/embed/media/{install.workspace_id + 1}/test/{'0' * 32}.png",
                    f"{srv.url}/embed/media/{install.workspace_id}/production/{'0' * 32}.png",
                    f"{srv.url}/embed/media/{install.workspace_id}/test/{'0' * 32}.html"):
            answer = author.put("/embed/api/builder/images/cover", json={"url": url, "alt": "x"})
            assert answer.status_code == 422 and "url must be an image of this course's media" in answer.json()["message"], url
        assert author.get("/embed/api/builder/").json()["course"]["image"] is None
        assert _stored(install.data_dir) == before
    finally:
        author.close()
    # a builder without AI gets 403 before anything else
    minted = api_client(server).post("/v1/headless/embed/course", json={
        "action": "edit", "identifier": "author-no-ai", "clientIdentifier": "acme", "options": {"ai": False}})
    opened = httpx.post(f"{srv.url}/embed/api/session", json={"token": minted.text.rsplit("/", 1)[1]}, timeout=30)
    no_ai = httpx.post(f"{srv.url}/embed/api/builder/images/screens", json={},
                       headers={"Authorization": f"Bearer {opened.json()['session']}"}, timeout=30)
    assert no_ai.status_code == 403 and "AI is not enabled" in no_ai.json()["message"], no_ai.text
