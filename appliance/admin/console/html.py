"""The console's page frame and the few HTML helpers: every value goes through `esc` (or `attr`)."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlencode

from litestar import MediaType, Response

from appliance import __version__
from appliance.admin.reports import Page

NAV = (
    ("/admin/", "Overview"),
    ("/admin/workspaces", "Workspaces"),
    ("/admin/keys", "API keys"),
    ("/admin/origins", "Embed origins"),
    ("/admin/webhooks", "Webhooks"),
    ("/admin/lti", "LTI platforms"),
    ("/admin/lrs", "Learning record stores"),
    ("/admin/ai", "Models and AI queue"),
    ("/admin/audit", "Audit log"),
    ("/admin/backups", "Backups"),
    ("/admin/usage", "Usage"),
)
# no script, no inline style: the stylesheet is served by the appliance itself
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {"content-security-policy": CSP, "x-frame-options": "DENY"}


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def csrf_field(token: str) -> str:
    return f'<input type="hidden" name="csrf" value="{esc(token)}">'


def page(
    title: str,
    body: str,
    *,
    admin: str | None = None,
    csrf: str | None = None,
    current: str = "",
    status: int = 200,
    notice: str = "",
    error: str = "",
    cookies: list[Any] | None = None,
) -> Response[str]:
    nav = ""
    if admin is not None and csrf is not None:
        here = ' aria-current="page"'
        links = "".join(
            f'<li><a href="{href}"{here if href == current else ""}>{esc(label)}</a></li>' for href, label in NAV
        )
        nav = (
            f'<nav aria-label="Console"><ul>{links}</ul>'
            f'<form method="post" action="/admin/logout" class="logout">{csrf_field(csrf)}'
            f"<span>Signed in as <strong>{esc(admin)}</strong></span> "
            f'<button type="submit">Log out</button></form></nav>'
        )
    messages = ""
    if notice:
        messages += f'<p class="notice" role="status">{esc(notice)}</p>'
    if error:
        messages += f'<p class="error" role="alert">{esc(error)}</p>'
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · Appliance console</title>"
        '<link rel="stylesheet" href="/admin/static/console.css"><link rel="icon" href="data:,"></head><body>'
        f'<header><a class="skip" href="#main">Skip to content</a><span class="brand">Appliance console</span>'
        f'<span class="version">v{esc(__version__)}</span></header>{nav}'
        f'<main id="main"><h1>{esc(title)}</h1>{messages}{body}</main></body></html>'
    )
    return Response(
        document, status_code=status, media_type=MediaType.HTML, headers=HEADERS, cookies=cookies or []
    )


def table(headers: list[str], rows: list[list[str]], caption: str) -> str:
    """`rows` hold HTML already escaped (cells may carry forms)."""
    if not rows:
        return f"<p>No {esc(caption.lower())}.</p>"
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><caption>{esc(caption)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def pager(path: str, result: Page, query: dict[str, Any] | None = None) -> str:
    def link(number: int, label: str) -> str:
        params = {k: v for k, v in (query or {}).items() if v not in (None, "")}
        return f'<a href="{esc(path + "?" + urlencode({**params, "page": number}))}">{label}</a>'

    parts = [f"Page {result.page} of {result.pages} ({result.total} in all)"]
    if result.page > 1:
        parts.insert(0, link(result.page - 1, "Previous page"))
    if result.page < result.pages:
        parts.append(link(result.page + 1, "Next page"))
    return f'<nav class="pager" aria-label="Pages">{" · ".join(parts)}</nav>'


def post_button(action: str, label: str, csrf: str, fields: dict[str, Any] | None = None, danger: bool = False) -> str:
    hidden = "".join(f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">' for k, v in (fields or {}).items())
    cls = ' class="danger"' if danger else ""
    return (
        f'<form method="post" action="{esc(action)}" class="inline">{csrf_field(csrf)}{hidden}'
        f'<button type="submit"{cls}>{esc(label)}</button></form>'
    )


def message_page(title: str, text: str, status: int, link: tuple[str, str] | None = None) -> Response[str]:
    """A refusal or a dead end (a used setup link, a stale form) as a plain page."""
    more = f'<p><a href="{esc(link[0])}">{esc(link[1])}</a></p>' if link else ""
    return page(title, f"<p>{esc(text)}</p>{more}", status=status)
