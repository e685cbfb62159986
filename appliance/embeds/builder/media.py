"""Media uploads: an image, video or audio file (raw body) into the encrypted object store, served
back at `GET /embed/media/<ws>/<env>/<object>.<ext>`. Images follow the one image rule,
appliance.images.uploads (type from the bytes, limits, metadata dropped, SVG sanitised), on upload
and again when served (an SVG is served as re-sanitised, under a CSP that allows no script)."""

from __future__ import annotations

import re
from typing import Any

import anyio
from litestar import Controller, Request, Response, get, post

from appliance.embeds.builder.access import PATH, builder_session, owned_row, target
from appliance.errors import ApiError, DomainError, as_api_error
from appliance.images import uploads
from appliance.server import public
from appliance.server.context import context_of, runtime_of
from appliance.storage.objects import ObjectError, ObjectStore

MEDIA_MAX_BYTES = 8 * 1024 * 1024
# accepted uploads: extension, MIME type, and kind; images are appliance.images.uploads' (SVG too)
MEDIA_TYPES: dict[str, tuple[str, str]] = {
    **{ext: (mime, "image") for ext, mime in uploads.IMAGE_TYPES.items()},
    "mp4": ("video/mp4", "video"),
    "webm": ("video/webm", "video"),
    "mp3": ("audio/mpeg", "audio"),
    "ogg": ("audio/ogg", "audio"),
    "wav": ("audio/wav", "audio"),
}
MEDIA_NAME = re.compile(r"^([0-9a-f]{32})\.([a-z0-9]{2,4})$")
MEDIA_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


def sniff_media(data: bytes) -> str | None:
    """The extension of an accepted media file, from its content (never from its name)."""
    image = uploads.sniff_image(data)
    if image is not None:
        return image
    head = data[:16]
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[4:8] == b"ftyp":
        return "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    return None


def clean_media(data: bytes) -> tuple[bytes, str]:
    """The bytes to store and their extension: an image cleaned by the image rule, or a video or
    audio file as it came (sniffed)."""
    if not data:
        raise ApiError(422, "The upload is empty")
    if len(data) > MEDIA_MAX_BYTES:
        raise ApiError(413, f"Media files are limited to {MEDIA_MAX_BYTES // (1024 * 1024)} MB")
    ext = sniff_media(data)
    if ext is None:
        raise ApiError(415, "Upload a PNG, JPEG, GIF, WebP or SVG image, an MP4 or WebM video, or an MP3, OGG or WAV file")
    if ext not in uploads.IMAGE_TYPES:
        return data, ext
    try:
        image = uploads.clean_image(data)
    except DomainError as exc:
        raise as_api_error(exc) from None
    return image.data, image.extension


class MediaApi(Controller):
    path = PATH
    include_in_schema = False

    @post("/media", status_code=201)
    async def upload_media(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        session = builder_session(request)
        course_id = target(request, session)
        row = owned_row(session.db.read(), session, course_id)
        data, ext = await anyio.to_thread.run_sync(clean_media, await request.body())
        store = ObjectStore(runtime_of(request))
        # stored under the course's client (or the course): erasing that subject erases its media
        subject_kind, subject_id = (
            ("client", row["client_identifier"]) if row["client_identifier"] else ("course", row["id"])
        )
        object_id = await anyio.to_thread.run_sync(
            lambda: store.put(session.workspace_id, session.environment, subject_kind, subject_id, data)
        )
        mime, kind = MEDIA_TYPES[ext]
        url = f"{public.base_url(request)}/embed/media/{session.workspace_id}/{session.environment}/{object_id}.{ext}"
        return {"url": url, "kind": kind, "type": mime, "bytes": len(data)}


@get("/embed/media/{workspace:int}/{environment:str}/{name:str}", include_in_schema=False)
async def media(request: Request[Any, Any, Any], workspace: int, environment: str, name: str) -> Response[bytes]:
    """An uploaded media file. Its URL is the capability (a random 128-bit object id): images and
    videos are loaded by `<img>`/`<video>`, which cannot send the session's Bearer header."""
    match = MEDIA_NAME.match(name)
    if match is None or match.group(2) not in MEDIA_TYPES or environment not in ("test", "production"):
        raise ApiError(404, "No such media")
    ctx = context_of(request)
    ctx.actor = "embed-media"
    ctx.target = f"media:{match.group(1)}"
    store = ObjectStore(runtime_of(request))
    try:
        data = await anyio.to_thread.run_sync(lambda: store.get(workspace, environment, match.group(1)))
    except ObjectError:
        raise ApiError(404, "No such media") from None
    if sniff_media(data) != match.group(2):
        raise ApiError(404, "No such media")
    if match.group(2) == "svg":
        # whoever stored it (an upload, the illustration composer), an SVG is served only as the
        # sanitiser writes it
        try:
            data = await anyio.to_thread.run_sync(uploads.sanitise_svg, data)
        except DomainError:
            raise ApiError(404, "No such media") from None
    return Response(
        data,
        media_type=MEDIA_TYPES[match.group(2)][0],
        headers={"content-security-policy": MEDIA_CSP, "cross-origin-resource-policy": "same-origin"},
    )
