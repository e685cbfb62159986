"""Build a SCORM package (a zip) for one published course.

Both kinds carry the launch page and the learner player of the embed (appliance/embeds/web: the
same modules, not a copy of the code in another form) plus `package.js`, the package's settings:

* static: the published course in the player's learner shape, its answer key (static packages grade
  quizzes offline, in the browser: the correct answers are necessarily inside the package) and its
  `data:` assets and the images and media stored in this appliance (a cover, a screen's image, an
  uploaded file: decrypted) as files under `assets/`, narrated screens' clips (decrypted) under
  `narration/`.
  No network needed.
* dynamic: the appliance's public base URL and a view-only package token (`scorm-package+jwt`) for
  this one course; the player loads the live published course and has the appliance grade quizzes.

Test-environment packages expire 30 days after export (the token's `exp`; static packages carry the
date and the launch page refuses to start after it). Production packages do not expire: their token
lasts PRODUCTION_TOKEN_SECONDS (50 years), see docs/scorm.md.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

import sqlite_utils

from appliance.courses import service as courses
from appliance.embeds import player
from appliance.embeds.tokens import SCORM_TYP, Signer
from appliance.errors import NotFound
from appliance.scorm.manifest import VERSIONS, build_manifest

WEB_DIR = Path(__file__).resolve().parent.parent / "embeds" / "web"
KINDS = ("dynamic", "static")
TEST_SECONDS = 30 * 86400
PRODUCTION_TOKEN_SECONDS = 50 * 365 * 86400
ZIP_DATE = (2000, 1, 1, 0, 0, 0)  # a fixed timestamp: the same inputs make the same archive
SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*(/[A-Za-z0-9_][A-Za-z0-9._-]*)*$")
# the player files a package carries; the embed-only entries (course.js, collection.js, ...) stay out
# the player draws its icons from vendor/icons/index.js (inline SVG): the package carries it and its licence
WEB_FILES = ("app.css", "scorm.js", "lib/*.js", "player/*.js", "vendor/*.js", "vendor/LICENSE-*.txt",
             "vendor/icons/index.js", "vendor/icons/LICENSE")
DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?((?:;[\w-]+=[\w.+-]+)*)(;base64)?,(.*)$", re.DOTALL)
EXTENSIONS = {
    "image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp", "image/svg+xml": "svg",
    "video/mp4": "mp4", "video/webm": "webm", "audio/mpeg": "mp3", "audio/ogg": "ogg", "audio/wav": "wav",
}  # fmt: skip


class PackageError(ValueError):
    """An unsafe or invalid package member (never expected from our own inputs)."""


def safe_name(name: str) -> str:
    """Archive member names: relative, forward slashes, no `..`, no drive letters, no oddities."""
    if not SAFE_NAME.match(name) or any(part in ("", ".", "..") for part in name.split("/")):
        raise PackageError(f"unsafe archive member name {name!r}")
    return name


def player_files() -> dict[str, bytes]:
    files = {"index.html": (WEB_DIR / "scorm.html").read_bytes()}
    for pattern in WEB_FILES:
        for path in sorted(WEB_DIR.glob(pattern)):
            files[path.relative_to(WEB_DIR).as_posix()] = path.read_bytes()
    return files


def answer_key(content: dict[str, Any]) -> dict[str, Any]:
    """What a static package needs to grade quizzes offline: per quiz screen, each question's
    correct answer ids and feedback, and the passing grade."""
    key: dict[str, Any] = {}
    for screen in content.get("screens", []):
        if screen.get("type") != "quiz":
            continue
        key[str(screen.get("id"))] = {
            "passingGrade": screen.get("passing_grade", 0) or 0,
            "questions": [
                {
                    "id": q.get("id"),
                    "correct": [a.get("id") for a in q.get("answers", []) if a.get("correct")],
                    "feedback": q.get("feedback") or {},
                }
                for q in (screen.get("content") or {}).get("questions", [])
            ],
        }
    return key


def extract_assets(course: dict[str, Any]) -> dict[str, bytes]:
    """Move `data:` media out of the course JSON into `assets/<sha256>.<ext>` files (rewriting the
    URLs). Other URLs stay as they are: the appliance makes no outbound requests (docs/scorm.md)."""
    assets: dict[str, bytes] = {}
    for screen in course.get("screens", []):
        content = screen.get("content") or {}
        url = content.get("url") if screen.get("type") == "media" else None
        match = DATA_URL.match(url) if isinstance(url, str) else None
        if not match:
            continue
        mime, _params, is_b64, payload = match.groups()
        try:
            data = base64.b64decode(payload, validate=False) if is_b64 else unquote_to_bytes(payload)
        except ValueError:
            continue
        name = f"assets/{hashlib.sha256(data).hexdigest()[:20]}.{EXTENSIONS.get(mime or '', 'bin')}"
        assets[name] = data
        screen["content"] = {**content, "url": name}
    return assets


# a file in this appliance's object store, by its media URL's object id and extension -> its bytes
# (decrypted, the caller's workspace and environment only); NotFound when it cannot be read
MediaReader = Callable[[str, str], bytes]
# the URL the builder's media route serves (appliance.embeds.builder.media), absolute or not
MEDIA_URL = re.compile(r"^(?:https?://[^/\s]+)?/embed/media/(\d+)/(test|production)/([0-9a-f]{32})\.([a-z0-9]{2,4})$")


def extract_stored_media(course: dict[str, Any], workspace_id: int, environment: str,
                         media: MediaReader) -> dict[str, bytes]:
    """Copy the stored files the course shows (its cover `image`, each screen's image `asset`, a media
    screen's `content.url`) into `assets/<sha256>.<ext>` and point the course at them. Only URLs of
    the package's own workspace and environment are read; any other URL, or a file that cannot be
    read (erased), stays as it was."""
    assets: dict[str, bytes] = {}

    def local(url: Any) -> str | None:
        match = MEDIA_URL.match(url) if isinstance(url, str) else None
        if match is None or int(match.group(1)) != workspace_id or match.group(2) != environment:
            return None
        try:
            data = media(match.group(3), match.group(4))
        except NotFound:
            return None
        name = f"assets/{hashlib.sha256(data).hexdigest()[:20]}.{match.group(4)}"
        assets[name] = data
        return name

    course["image"] = local(course.get("image")) or course.get("image")
    for screen in course.get("screens", []):
        screen["asset"] = local(screen.get("asset")) or screen.get("asset", "")
        content = screen.get("content") or {}
        if screen.get("type") == "media" and (name := local(content.get("url"))):
            screen["content"] = {**content, "url": name}
    return assets


# a narrated screen's clip: (the published content, screen id) -> WAV bytes (decrypted from the object
# store, appliance.ai.narration.screen_clip); NotFound when the screen has none
ClipReader = Callable[[dict[str, Any], int], bytes]


def extract_narration(course: dict[str, Any], content: dict[str, Any], clip: ClipReader) -> dict[str, bytes]:
    """Copy each narrated screen's clip into `narration/<screenId>.wav` and name that file in the
    screen's `narration.file` (the SCORM transport's `narration(screenId)` answers it). A clip that
    cannot be read is left out and its screen shows no audio control."""
    files: dict[str, bytes] = {}
    for screen in course.get("screens", []):
        if not screen.get("narration"):
            continue
        sid = screen.get("id")
        try:
            data = clip(content, sid) if isinstance(sid, int) else b""
        except NotFound:
            data = b""
        if not data:
            screen["narration"] = None
            continue
        name = f"narration/{sid}.wav"
        files[name] = data
        screen["narration"] = {**screen["narration"], "file": name}
    return files


def _slug(title: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-").lower()[:60]
    return slug or "course"


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files, key=lambda n: (n != "imsmanifest.xml", n)):
            info = zipfile.ZipInfo(safe_name(name), date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3
            archive.writestr(info, files[name])
    return buffer.getvalue()


def package_token(
    signer: Signer, workspace_id: int, environment: str, course_id: int, version: str
) -> tuple[str, int]:
    """The dynamic package's token: view one course, nothing else (its own `typ` and audience)."""
    lifetime = TEST_SECONDS if environment == "test" else PRODUCTION_TOKEN_SECONDS
    claims = {
        "workspace": workspace_id,
        "environment": environment,
        "kind": "course",
        "action": "view",
        "course": course_id,
        "scorm": version,
    }
    token, full = signer.sign(SCORM_TYP, claims, lifetime)
    return token, int(full["exp"])


def build_package(
    db: sqlite_utils.Database,
    signer: Signer,
    *,
    workspace_id: int,
    environment: str,
    course_id: int,
    kind: str,
    version: str,
    base_url: str,
    now: float | None = None,
    clip: ClipReader | None = None,
    media: MediaReader | None = None,
) -> tuple[bytes, str]:
    """The zip and its file name. 404 for a deleted course, 409 for one never published. `clip`
    reads narration clips for static packages (without it, static packages carry no narration); `media`
    reads the stored images and media static packages carry (without it their URLs stay)."""
    if kind not in KINDS or version not in VERSIONS:
        raise PackageError("type must be dynamic or static and version 1.2 or 2004")
    moment = int(time.time() if now is None else now)
    row = courses.get_row(db, course_id)
    course = player.course_for_player(db, course_id, None)  # 404 deleted, 409 unpublished
    config: dict[str, Any] = {"mode": kind, "version": version, "environment": environment, "course": None}
    files = player_files()
    if kind == "static":
        config["course"] = course
        config["key"] = answer_key(player.published_content(row))
        config["expires"] = moment + TEST_SECONDS if environment == "test" else None
        files.update(extract_assets(course))
        if media is not None:
            files.update(extract_stored_media(course, workspace_id, environment, media))
        if clip is not None:
            files.update(extract_narration(course, player.published_content(player.played_row(db, course_id, None)), clip))
        else:
            for screen in course.get("screens", []):
                screen["narration"] = None
    else:
        token, expires = package_token(signer, workspace_id, environment, course_id, version)
        config.update(appliance=base_url.rstrip("/"), token=token)
        config["expires"] = expires if environment == "test" else None
    files["package.js"] = (
        "// Written by the appliance at export (docs/scorm.md); read by scorm.js.\nexport default "
        + json.dumps(config, ensure_ascii=True, sort_keys=True, indent=1)
        + ";\n"
    ).encode()
    files["imsmanifest.xml"] = build_manifest(
        version=version,
        identifier=f"coassemble-course-{course_id}-{kind}",
        title=str(row["title"]),
        files=list(files),
    )
    suffix = "scorm12" if version == "1.2" else "scorm2004"
    return _zip(files), f"{_slug(str(row['title']))}-{suffix}-{kind}.zip"
