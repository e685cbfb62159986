"""The base URL minted links carry: where partners' browsers reach this appliance.

Signed embed URLs, SCORM packages (dynamic ones call back) and builder media URLs hold an absolute
base. `server.public_url` (or `serve --public-url`, alias `--embed-base`) is the operator's override,
for a reverse proxy or a name only browsers use. Without it the base is the scheme and host the
request reached: https under TLS serve (the port speaks only TLS, so an http:// link could not
work, and a bearer token in it would travel in clear behind a plain hop), and the Host header the
caller used, not the listen address (0.0.0.0 is nobody's address).
"""

from __future__ import annotations

import re
from typing import Any

from litestar import Request

from appliance.config import Settings

# host[:port] or [IPv6][:port]; anything else in Host (a path, credentials, spaces) is ignored
_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?")


def base_url(request: Request[Any, Any, Any]) -> str:
    settings: Settings = request.app.state.runtime.settings
    if settings.server.public_url:
        return settings.server.public_url.rstrip("/")
    scheme = "https" if request.scope.get("scheme") == "https" else "http"
    host = request.headers.get("host", "")
    if not _HOST.fullmatch(host):
        host = f"{settings.server.host}:{settings.server.port}"
    return f"{scheme}://{host}"
