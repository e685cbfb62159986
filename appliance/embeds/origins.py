"""Allowed host origins per workspace environment, and the embed pages' security headers.

The control database keeps `workspaces.allowed_origins` as `{"test": [...], "production": [...]}`.
They feed `Content-Security-Policy: frame-ancestors` (who may frame the embed page) and the
targets the page posts its events to. An empty list means: test environment, any origin may frame
the page; production, none may (configure the partner's origin before going live).
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import sqlite_utils

from appliance.storage.database import Database
from appliance.workspaces import service
from appliance.workspaces.service import ENVIRONMENTS, NotFound


class OriginError(ValueError):
    pass


def normalise_origin(value: str) -> str:
    """`https://Example.com:443/path` -> `https://example.com`; refuses anything but an http(s) origin."""
    text = (value or "").strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OriginError(f"{value!r} is not an origin like https://partner.example")
    if parts.username or parts.password or parts.query or parts.fragment or parts.path not in ("", "/"):
        raise OriginError(f"{value!r} is not an origin (no path, query or credentials)")
    host = parts.hostname.lower()
    if any(c in host for c in " ;,'\"*"):
        raise OriginError(f"{value!r} has an invalid host")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        raise OriginError(f"{value!r} has an invalid port") from None
    default = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def allowed_origins(control: Database, workspace_id: int, environment: str) -> list[str]:
    origins = service.get_workspace(control, workspace_id)["allowed_origins"].get(environment, [])
    return [str(o) for o in origins]


def set_origins(
    control: Database,
    workspace_id: int,
    environment: str,
    add: list[str],
    remove: list[str],
    *,
    replace: bool = False,
) -> list[str]:
    """Add and remove origins (normalised), or replace the list with `add`; returns the list after."""
    if environment not in ENVIRONMENTS:
        raise OriginError("environment must be test or production")
    adding = [normalise_origin(o) for o in add]
    removing = {normalise_origin(o) for o in remove}

    def job(db: sqlite_utils.Database) -> list[str]:
        row = db.execute("SELECT allowed_origins FROM workspaces WHERE id = ?", [workspace_id]).fetchone()
        if row is None:
            raise NotFound(f"workspace {workspace_id} does not exist")
        doc = json.loads(row[0])
        current = [] if replace else [o for o in doc.get(environment, []) if o not in removing]
        for origin in adding:
            if origin not in current:
                current.append(origin)
        if len(current) > 100:
            raise OriginError("at most 100 origins per environment")
        doc[environment] = current
        db.execute("UPDATE workspaces SET allowed_origins = ? WHERE id = ?", [json.dumps(doc), workspace_id])
        return current

    return control.write(job)


def framing_refused(origins: list[str], environment: str, parent: str | None) -> bool:
    """Whether the browser will refuse to show the page framed by `parent` (None: unknown)."""
    if not origins:
        return environment != "test"  # test: anyone may frame; production: nobody until configured
    return parent is None or parent not in origins


def parent_origin(referer: str) -> str | None:
    """The framing page's origin from the iframe request's Referer (sent by the host page's policy)."""
    try:
        parts = urlsplit(referer.strip())
        return normalise_origin(f"{parts.scheme}://{parts.netloc}") if parts.netloc else None
    except (OriginError, ValueError):
        return None


def frame_ancestors(origins: list[str], environment: str) -> str:
    if origins:
        return " ".join(origins)
    return "*" if environment == "test" else "'none'"


def embed_page_csp(origins: list[str], environment: str) -> str:
    """No inline script, no eval, nothing from other origins; framing only by the allowed hosts."""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data: blob:",
            "media-src 'self' blob:",
            "font-src 'self'",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
            f"frame-ancestors {frame_ancestors(origins, environment)}",
            "report-uri /embed/csp-report",
        ]
    )


# the headers every embed page carries; the middleware adds `Referrer-Policy: no-referrer`,
# `X-Content-Type-Options: nosniff` and `Cache-Control: no-store` to every response
def page_headers(origins: list[str], environment: str) -> dict[str, str]:
    return {
        "content-security-policy": embed_page_csp(origins, environment),
        "permissions-policy": "camera=(), microphone=(), geolocation=()",
    }
