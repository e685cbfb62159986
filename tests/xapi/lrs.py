"""A real learning record store's statements resource for tests, and the xAPI validator.

`Lrs` answers `PUT /<prefix>/statements?statementId=` over plain HTTP on loopback: it checks
Basic auth (or, for prefixes in `bearer`, the access token its `POST /token` gives for those credentials) and the `X-Experience-API-Version` header itself, answers what the test scripted for
its prefix (else 204), and keeps what it received. `validate` runs the npm `xapi-validation`
package (installed by `make test`, Makefile target xapi-deps) through node.
"""

from __future__ import annotations

import base64
import json
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

REPO = Path(__file__).resolve().parent.parent.parent
VALIDATOR = REPO / ".cache" / "test-node" / "node_modules" / "xapi-validation"


@dataclass
class Received:
    prefix: str
    statement_id: str
    headers: dict[str, str]
    body: dict[str, Any]
    status: int


class Lrs:
    def __init__(self, user: str, password: str, port: int = 0) -> None:
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.port = port
        self.statuses: dict[str, int] = {}  # prefix -> status to answer (default 204)
        self.received: list[Received] = []
        self.bearer: set[str] = set()  # prefixes that want the OAuth2 access token instead of Basic auth
        self.token = "access-token-51"
        self.tokens_issued = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Lrs:
        lrs = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                parts = urlsplit(self.path)
                prefix = parts.path.removesuffix("/statements").strip("/")
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = lrs.statuses.get(prefix, 204)
                wanted = f"Bearer {lrs.token}" if prefix in lrs.bearer else lrs.auth
                if self.headers.get("Authorization") != wanted:
                    status = 401
                elif self.headers.get("X-Experience-API-Version") != "1.0.3":
                    status = 400
                with lrs._lock:
                    lrs.received.append(
                        Received(
                            prefix,
                            parse_qs(parts.query).get("statementId", [""])[0],
                            {k.lower(): v for k, v in self.headers.items()},
                            json.loads(raw),
                            status,
                        )
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:  # the OAuth2 token endpoint: client credentials in Basic auth
                form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode())
                ok = self.headers.get("Authorization") == lrs.auth and form.get("grant_type") == ["client_credentials"]
                body = json.dumps({"access_token": lrs.token, "token_type": "Bearer", "expires_in": 3600}).encode()
                with lrs._lock:
                    lrs.tokens_issued += int(ok)
                self.send_response(200 if ok else 401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body) if ok else 0))
                self.end_headers()
                if ok:
                    self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def at(self, prefix: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.prefix == prefix]

    def wait(self, ready: Callable[[], bool], timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; received {[(r.prefix, r.body['verb']['id']) for r in self.received]}")
            time.sleep(0.05)


def validate(statements: list[dict[str, Any]]) -> list[list[str]]:
    """The validator's warnings for each statement (an empty list: valid)."""
    script = (
        f"const v = require({json.dumps(str(VALIDATOR))}).default;"
        "const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "console.log(JSON.stringify(input.map(s => v(s).map(w => w.constructor.name + ' at ' + w.path.join('.')))));"
    )
    out = subprocess.run(["node", "-e", script], input=json.dumps(statements), capture_output=True, text=True,
                         timeout=60, check=True)
    result: list[list[str]] = json.loads(out.stdout)
    return result
