"""An operator's image engines: OpenAI-compatible `POST /v1/images/generations` servers (`[images]
engines`), tried in order. Each answer is read as a stream under a byte cap, must be JSON with
`data[0].b64_json` (asked for; a `url` answer is refused: nothing is fetched from elsewhere), and
must decode to a PNG, JPEG or WebP image within the size and pixel limits. A connection error, a
timeout or a 5xx/429 makes the next engine try (Unavailable when none answers); a refusal, HTML,
oversized or non-image answer from every engine that answered is BadGateway (502). Nothing is stored here:
the caller stores the bytes only once they passed."""

from __future__ import annotations

import base64
import binascii
import json
import os
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from appliance.ai.engine import CancelToken
from appliance.ai.errors import Cancelled
from appliance.config import ImageSettings, RemoteEngine, api_key_variable
from appliance.errors import BadGateway, Unavailable
from appliance.security import secrets
from appliance.storage.keyring import Keyring

MEDIA_TYPES = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}


@dataclass(frozen=True)
class EngineImage:
    data: bytes
    extension: str  # png | jpg | webp
    engine: str  # the engine's name (its table's name, else its url)
    seconds: float  # the engine's own time, request to last byte


class BadAnswer(Exception):
    """One engine's answer is unusable (the message names why, never the answer itself)."""


def sniff(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def dimensions(data: bytes, extension: str) -> tuple[int, int] | None:
    """Width and height from the image's header (PNG IHDR, JPEG SOFn, WebP VP8/VP8L/VP8X)."""
    try:
        if extension == "png":
            return struct.unpack(">II", data[16:24])
        if extension == "jpg":
            i = 2
            while i + 9 < len(data):
                if data[i] != 0xFF:
                    return None
                marker, length = data[i + 1], struct.unpack(">H", data[i + 2 : i + 4])[0]
                if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                    height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                    return width, height
                i += 2 + length
            return None
        chunk = data[12:16]
        if chunk == b"VP8X":
            return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
        if chunk == b"VP8L":
            bits = int.from_bytes(data[21:25], "little")
            return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
        if chunk == b"VP8 ":
            width, height = struct.unpack("<HH", data[26:30])
            return width & 0x3FFF, height & 0x3FFF
    except struct.error:
        return None
    return None


def check_image(data: bytes, settings: ImageSettings) -> str:
    """The image's extension, or BadAnswer."""
    extension = sniff(data)
    if extension is None:
        raise BadAnswer("the answer is no PNG, JPEG or WebP image")
    if len(data) > settings.max_bytes:
        raise BadAnswer(f"the image is larger than {settings.max_bytes} bytes")
    size = dimensions(data, extension)
    if size is None or min(size) < 1:
        raise BadAnswer("the image's size cannot be read")
    if size[0] * size[1] > settings.max_pixels:
        raise BadAnswer(f"the image has more than {settings.max_pixels} pixels")
    return extension


def api_key(engine: RemoteEngine, keyring: Keyring | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The engine's API key, named as a text engine's is (docs/configuration.md)."""
    env = os.environ if environ is None else environ
    found = env.get(api_key_variable(engine.key_name))
    if not found and keyring is not None:
        found = secrets.get(keyring, secrets.REMOTE_API_KEY + engine.key_name)
    return found or None


def _read_capped(response: httpx.Response, cap: int, cancel: CancelToken | None) -> bytes:
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise BadAnswer("the answer is larger than the image limit")
    body = bytearray()
    for chunk in response.iter_bytes():
        if cancel is not None and cancel.cancelled:
            raise Cancelled("cancelled")
        body += chunk
        if len(body) > cap:
            raise BadAnswer("the answer is larger than the image limit")
    return bytes(body)


def ask(client: httpx.Client, engine: RemoteEngine, prompt: str, settings: ImageSettings, key: str | None,
        cancel: CancelToken | None = None) -> bytes:
    """One engine's image bytes, or BadAnswer / httpx.HTTPError / Unavailable (5xx, 429)."""
    url = engine.url.rstrip("/").removesuffix("/v1") + "/v1/images/generations"
    body = {"model": engine.model, "prompt": prompt, "n": 1, "size": settings.size, "response_format": "b64_json"}
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    # base64 is 4/3 of the bytes; the JSON around it is small
    cap = settings.max_bytes * 4 // 3 + 64 * 1024
    with client.stream("POST", url, json=body, headers=headers, timeout=settings.timeout_seconds) as response:
        if response.status_code >= 500 or response.status_code == 429:
            raise Unavailable(f"the engine answered {response.status_code}")
        raw = _read_capped(response, cap, cancel)
    if response.status_code != 200:
        raise BadAnswer(f"the engine refused the image ({response.status_code})")
    if "json" not in response.headers.get("content-type", ""):
        raise BadAnswer("the answer is not JSON")
    try:
        document = json.loads(raw)
        item = document["data"][0]
    except (ValueError, KeyError, IndexError, TypeError):
        raise BadAnswer("the answer is no images/generations result") from None
    if not isinstance(item, dict) or not isinstance(item.get("b64_json"), str):
        raise BadAnswer("the answer has no b64_json image (a url is not fetched)")
    try:
        return base64.b64decode(item["b64_json"], validate=True)
    except (binascii.Error, ValueError):
        raise BadAnswer("the answer's b64_json is not base64") from None


def generate(settings: ImageSettings, prompt: str, *, keyring: Keyring | None = None,
             cancel: CancelToken | None = None, transport: httpx.BaseTransport | None = None) -> EngineImage:
    """The first engine's image that passes; Unavailable when none answered, BadGateway when the
    ones that answered gave nothing usable."""
    if not settings.engines:
        raise Unavailable("No image engine is configured")
    refused: list[str] = []
    down: list[str] = []
    with httpx.Client(transport=transport, follow_redirects=False) as client:
        for engine in settings.engines:
            if cancel is not None and cancel.cancelled:
                raise Cancelled("cancelled")
            name = engine.key_name
            start = time.perf_counter()
            try:
                data = ask(client, engine, prompt, settings, api_key(engine, keyring), cancel)
                extension = check_image(data, settings)
                return EngineImage(data, extension, name, time.perf_counter() - start)
            except BadAnswer as exc:
                refused.append(f"{name}: {exc}")
            except (httpx.HTTPError, Unavailable) as exc:
                reason = "timed out" if isinstance(exc, httpx.TimeoutException) else (
                    exc.message if isinstance(exc, Unavailable) else "could not be reached")
                down.append(f"{name}: {reason}")
    if refused:
        raise BadGateway("No usable image from the image engines: " + "; ".join(refused + down))
    raise Unavailable("No image engine answered: " + "; ".join(down))
