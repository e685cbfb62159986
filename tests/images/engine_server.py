"""A tiny OpenAI-compatible image engine for the tests (the third party's stand-in): it answers
`POST /<mode>/v1/images/generations` with a generated PNG, or with what `<mode>` asks for (HTML, a
refusal, a busy server, an oversized or endless body, a url, no image, a 30,000 x 30,000 PNG, a slow
answer). Every request is recorded (path, Authorization header, JSON body)."""

from __future__ import annotations

import base64
import functools
import json
import random
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def png(width: int, height: int, colour: tuple[int, int, int] = (200, 40, 40), *, data: bool = True) -> bytes:
    """A real RGB PNG (one colour); ``data=False``: the header only claims the size (a bomb's header)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = b"".join(b"\x00" + bytes(colour) * width for _ in range(height)) if data else b"\x00"
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@functools.cache
def noise_png(side: int = 512) -> bytes:
    """A PNG that does not compress (seeded noise): about the size of a real generated picture."""
    noise = random.Random(1)
    rows = b"".join(b"\x00" + noise.randbytes(side * 3) for _ in range(side))
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 1)) + chunk(b"IEND", b""))


class Handler(BaseHTTPRequestHandler):
    server: EngineServer

    def log_message(self, *args: Any) -> None:  # keep the test output clean
        pass

    def _send(self, status: int, body: bytes, kind: str = "application/json", length: bool = True) -> None:
        self.send_response(status)
        self.send_header("content-type", kind)
        if length:
            self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        size = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(size) or b"{}")
        mode = self.path.strip("/").split("/")[0]
        self.server.requests.append({"mode": mode, "path": self.path, "auth": self.headers.get("authorization"),
                                     "body": body})
        image = lambda data: json.dumps({"created": 1, "data": [{"b64_json": base64.b64encode(data).decode()}]}).encode()  # noqa: E731
        if mode == "ok":
            self._send(200, image(png(64, 36)))
        elif mode == "noise":  # a photo-sized answer (512 x 512 of noise, about 790 KB): the benchmark's
            self._send(200, image(noise_png()))
        elif mode == "html":
            self._send(200, b"<html><body>Sign in</body></html>", "text/html")
        elif mode == "refuse":
            self._send(400, b'{"error": {"message": "Your request was rejected by the safety system"}}')
        elif mode == "busy":
            self._send(503, b'{"error": "overloaded"}')
        elif mode == "declared":  # says how large it is: refused before reading
            self._send(200, b"{" + b" " * 300_000 + b"}")
        elif mode == "endless":  # no length: read until the cap
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            try:
                for _ in range(10_000):
                    self.wfile.write(b" " * 65536)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the appliance hung up at its cap: what the test wants
        elif mode == "url":
            self._send(200, b'{"data": [{"url": "http://127.0.0.1:9/elsewhere.png"}]}')
        elif mode == "text":
            self._send(200, image(b"this is not an image at all"))
        elif mode == "giant":
            self._send(200, image(png(30_000, 30_000, data=False)))
        elif mode == "slow":
            time.sleep(2)
            self._send(200, image(png(8, 8)))
        else:
            self._send(404, b"{}")


class EngineServer(ThreadingHTTPServer):
    daemon_threads = True
    requests: list[dict[str, Any]]


@contextmanager
def engine_server() -> Iterator[EngineServer]:
    server = EngineServer(("127.0.0.1", 0), Handler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def url(server: EngineServer, mode: str) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/{mode}"
