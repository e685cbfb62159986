"""A real HTTPS webhook receiver for tests, written the way a partner would write one.

It verifies each request independently of the appliance's code: recompute
HMAC-SHA256(secret, "<X-Coassemble-Timestamp>.<raw body>"), compare in constant time with the
`sha256=` signature, reject timestamps more than 300 s away, and dedupe by X-Coassemble-Delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered
    verified: bool
    time: float

    @property
    def delivery(self) -> str:
        return self.headers.get("x-coassemble-delivery", "")

    def json(self) -> Any:
        return json.loads(self.body)


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    timestamp = headers.get("x-coassemble-timestamp", "")
    signature = headers.get("x-coassemble-signature", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
        return False
    expected = (
        "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    )
    return hmac.compare_digest(expected, signature)


class Receiver:
    def __init__(self, cert: Path, key: Path, port: int = 0) -> None:
        self.cert, self.key = cert, key
        self.port = port
        self.secrets: dict[str, str] = {}  # path -> endpoint secret
        self.scripts: dict[str, list[int]] = {}  # path -> statuses to answer first (then 200)
        self.redirects: dict[str, str] = {}  # path -> Location for a 302
        self.delays: dict[str, float] = {}  # path -> seconds to wait before answering
        self.received: list[Received] = []
        self.accepted: dict[str, int] = {}  # delivery id -> times accepted with a 2xx
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                time.sleep(receiver.delays.get(self.path, 0.0))
                status, extra = receiver._answer(self.path, headers, body)
                self.send_response(status)
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.cert), str(self.key))
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str]]:
        with self._lock:
            secret = self.secrets.get(path)
            ok = secret is not None and verify(secret, headers, body)
            extra: dict[str, str] = {}
            script = self.scripts.get(path)
            if path in self.redirects:
                status, extra = 302, {"location": self.redirects[path]}
            elif not ok:
                status = 401
            elif script:
                status = script.pop(0)
            else:
                status = 200
                delivery = headers.get("x-coassemble-delivery", "")
                self.accepted[delivery] = self.accepted.get(delivery, 0) + 1
            self.received.append(Received(path, headers, body, status, ok, time.time()))
            return status, extra

    def at(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def wait(self, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out; received so far: {[(r.path, r.status) for r in self.received]}")
