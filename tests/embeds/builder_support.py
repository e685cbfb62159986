"""Helpers the builder's browser tests share (tests/embeds/test_builder*.py): they drive the builder
in its cross-origin iframe. Each module's own appliance and partner page are the `server` and
`sandbox` fixtures of tests/embeds/conftest.py."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

import httpx

from appliance.embeds.sandbox import Sandbox
from tests.helpers import Install, Server


def api_client(server: tuple[Server, Install]) -> httpx.Client:
    srv, install = server
    return srv.client(install.test_key)


def claims_of(url: str) -> dict[str, Any]:
    payload = url.rsplit("/", 1)[1].split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


def open_builder(page, sandbox: Sandbox, *, course: int, action: str, identifier: str, client: str, options: dict[str, Any]):  # type: ignore[no-untyped-def]
    query = (
        f"kind=course&action={action}&id={course}&identifier={identifier}&clientIdentifier={client}"
        f"&options={quote(json.dumps(options))}"
    )
    page.goto(f"{sandbox.url}/?{query}")
    page.wait_for_function(
        "window.__msgs.some(m => m.data && m.data.type === 'session' && ['ready','error'].includes(m.data.event))",
        timeout=30000,
    )
    return page.frame_locator("#embed")


def host_events(page) -> list[tuple[str, str, dict[str, Any]]]:  # type: ignore[no-untyped-def]
    return [(m["data"]["type"], m["data"]["event"], m["data"]["data"]) for m in page.evaluate("window.__msgs") if m["data"]]


def wait_saved(frame) -> None:  # type: ignore[no-untyped-def]
    frame.get_by_text("All changes saved").wait_for(timeout=20000)
