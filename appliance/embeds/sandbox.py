"""The partner sandbox: a host page on another origin that plays the partner's role.

It mints signed URLs server-side with an API key (as a partner's back end must: the key never
reaches the browser), shows the embed in an iframe and logs every postMessage event it receives,
with its origin, in the page and on stdout. Run by `appliance sandbox`; the tests use it as host.
"""

from __future__ import annotations

import html
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

ENDPOINTS = {
    "course": "/v1/headless/embed/course",
    "collection": "/v1/headless/embed/collection",
    "analytics/course": "/v1/headless/embed/analytics/course",
    "analytics/collection": "/v1/headless/embed/analytics/collection",
    "analytics/user": "/v1/headless/embed/analytics/user",
}

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Partner sandbox</title>
<style>
body {{ font: 15px/1.45 system-ui, sans-serif; margin: 0; background: #eef1f5; color: #1d2733; }}
header {{ background: #17324d; color: #fff; padding: .7rem 1.2rem; }}
header h1 {{ font-size: 1.1rem; margin: 0; overflow-wrap: anywhere; }}
h2 {{ font-size: 1rem; margin: 0 0 .4rem; }}
form {{ display: flex; flex-wrap: wrap; gap: .6rem; padding: .8rem 1.2rem; align-items: end; background: #fff; }}
label {{ display: flex; flex-direction: column; font-size: .8rem; max-width: 100%; }}
input, select, button {{ font: inherit; padding: .3rem; max-width: 100%; min-width: 0; }}
:focus-visible {{ outline: 3px solid #17324d; outline-offset: 2px; }}
main {{ display: grid; grid-template-columns: minmax(0, 2fr) minmax(16rem, 1fr); gap: 1rem; padding: 1rem 1.2rem; }}
iframe {{ width: 100%; height: 640px; border: 1px solid #c6ccd4; background: #fff; border-radius: 6px; }}
#log {{ background: #0f1720; color: #c8f7c5; font: 12px/1.4 monospace; padding: .6rem; height: 640px; overflow: auto; border-radius: 6px; }}
.err {{ color: #a1202b; padding: 1rem 1.2rem; }}
/* one column on narrow screens; minmax(0, ...) so a long log line scrolls inside its box, never the page */
@media (max-width: 800px) {{ main {{ grid-template-columns: minmax(0, 1fr); }} }}
</style></head>
<body>
<header><h1>Partner sandbox &middot; host origin <code id="origin"></code> &middot; appliance {appliance}</h1></header>
<form method="get" action="/" aria-label="Embed to mint">
<label>Embed<select name="kind">{kinds}</select></label>
<label>courseId / collectionId<input name="id" value="{id}" size="6"></label>
<label>identifier<input name="identifier" value="{identifier}"></label>
<label>clientIdentifier<input name="clientIdentifier" value="{client}"></label>
<label>options (JSON)<input name="options" value="{options}" size="30"></label>
<button type="submit">Mint a signed URL</button>
</form>
{error}
<main><div>{frame}</div><section aria-labelledby="log-title"><h2 id="log-title">Events received</h2>
<pre id="log" aria-live="polite" tabindex="0" aria-labelledby="log-title"></pre></section></main>
<script>
window.__msgs = [];
document.getElementById("origin").textContent = location.origin;
window.addEventListener("message", function (e) {{
  var parsed = null; try {{ parsed = JSON.parse(e.data); }} catch (_) {{}}
  var frame = document.getElementById("embed");
  var fromFrame = frame && e.source === frame.contentWindow;
  window.__msgs.push({{origin: e.origin, raw: e.data, data: parsed, fromFrame: fromFrame}});
  var line = new Date().toISOString().slice(11, 23) + " " + e.origin + " " + (typeof e.data === "string" ? e.data : JSON.stringify(e.data));
  document.getElementById("log").textContent += line + "\\n";
  fetch("/log", {{method: "POST", headers: {{"Content-Type": "application/json"}}, body: JSON.stringify({{origin: e.origin, data: e.data}})}});
}});
</script>
</body></html>
"""


class Sandbox:
    """The host: a small threaded HTTP server on its own origin."""

    def __init__(self, appliance_url: str, api_key: str, host: str = "localhost", port: int = 0) -> None:
        self.appliance_url = appliance_url.rstrip("/")
        self.api_key = api_key
        self.events: list[dict[str, Any]] = []
        self.minted: list[str] = []
        sandbox = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != "/":
                    self._send(404, b"not found", "text/plain")
                    return
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                self._send(200, sandbox.page(query).encode(), "text/html; charset=utf-8")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(min(length, 65536))
                if self.path == "/log":
                    try:
                        event = json.loads(raw)
                    except ValueError:
                        event = {"raw": raw.decode("utf-8", "replace")}
                    sandbox.events.append(event)
                    print(f"event from {event.get('origin')}: {event.get('data')}", flush=True)
                self._send(204, b"", "text/plain")

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.host = host
        self.port = int(self.server.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def mint(self, kind: str, body: dict[str, Any]) -> tuple[int, str]:
        response = httpx.post(
            self.appliance_url + ENDPOINTS[kind],
            json=body,
            headers={"Authorization": self.api_key},
            timeout=30,
        )
        if response.status_code == 200:
            self.minted.append(response.text)
        return response.status_code, response.text

    def page(self, query: dict[str, str]) -> str:
        kind = query.get("kind", "course")
        kind = kind if kind in ENDPOINTS else "course"
        ident = query.get("id", "1")
        identifier = query.get("identifier", "sandbox-learner")
        client = query.get("clientIdentifier", "sandbox-client")
        options_text = query.get("options", "{}")
        error, frame = "", "<p>Mint a signed URL to see the embed here.</p>"
        try:
            options = json.loads(options_text or "{}")
        except ValueError:
            options, error = {}, "options is not JSON"
        body: dict[str, Any] = {"identifier": identifier, "clientIdentifier": client, "options": options}
        if kind in ("course", "analytics/course"):
            body["courseId"] = int(ident) if ident.isdigit() else ident
            if kind == "course":
                body["action"] = query.get("action", "view")
        elif kind in ("collection", "analytics/collection"):
            body["collectionId"] = int(ident) if ident.isdigit() else ident
        if not error:
            try:
                status, text = self.mint(kind, body)
            except httpx.HTTPError as exc:
                status, text = 0, f"appliance unreachable: {type(exc).__name__}"
            if status == 200:
                frame = (
                    f'<iframe id="embed" title="Embedded {html.escape(kind)}" src="{html.escape(text, quote=True)}" '
                    'allow="fullscreen; autoplay; clipboard-write"></iframe>'
                )
            else:
                error = f"mint failed ({status}): {text[:300]}"
        kinds = "".join(
            f'<option value="{k}"{" selected" if k == kind else ""}>{k}</option>' for k in ENDPOINTS
        )
        return PAGE.format(
            appliance=html.escape(self.appliance_url),
            kinds=kinds,
            id=html.escape(ident, quote=True),
            identifier=html.escape(identifier, quote=True),
            client=html.escape(client, quote=True),
            options=html.escape(options_text, quote=True),
            error=f'<p class="err" role="alert">{html.escape(error)}</p>' if error else "",
            frame=frame,
        )

    def start(self) -> None:
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def serve_forever(self) -> None:
        print(f"Partner sandbox: {self.url}/  (appliance {self.appliance_url})", file=sys.stderr, flush=True)
        self.server.serve_forever()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
