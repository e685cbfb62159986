"""A console visitor over real HTTP: the forms' CSRF tokens are read from the pages, as a browser would."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import Server, cli

PASSPHRASE = "correct horse battery staple"
SETUP_LINK = re.compile(r"Administrator setup link \(one use, valid 30 minutes\): (\S+)")


def setup_link(server: Server) -> str:
    """A fresh first-run link for this server (`appliance admin setup-link`)."""
    out = cli("admin", "setup-link", "--base-url", server.url, data_dir=server.data_dir).stdout
    match = SETUP_LINK.search(out)
    assert match, out
    return match.group(1)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html[:2000]
    return match.group(1)


class Visitor:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.url, follow_redirects=False, timeout=60)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, **kw)

    def form(self, page_path: str, action: str, fields: dict[str, Any]) -> httpx.Response:
        """Load the page, then post the form with the page's CSRF token."""
        page = self.http.get(page_path)
        assert page.status_code == 200, page.text[:500]
        return self.http.post(action, data={"csrf": csrf_of(page.text), **fields})

    def set_up(self, link: str, name: str = "ops", passphrase: str = PASSPHRASE) -> httpx.Response:
        path = httpx.URL(link).path
        return self.form(path, path, {"name": name, "passphrase": passphrase, "again": passphrase})

    def login(self, name: str = "ops", passphrase: str = PASSPHRASE) -> httpx.Response:
        return self.form("/admin/login", "/admin/login", {"name": name, "passphrase": passphrase})

    def close(self) -> None:
        self.http.close()


def audit_entries(data_dir: Path) -> list[dict[str, Any]]:
    out = cli("audit", "export", data_dir=data_dir).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]
