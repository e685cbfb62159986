"""The audit log (filters, export, verify chain), backups (restore points, verify) and usage."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, QueryParameter
from litestar.response import Stream

from appliance.admin import reports
from appliance.admin.console import auth
from appliance.admin.console.html import csrf_field, esc, page, pager, table
from appliance.backup import verify as backup_verify
from appliance.server.context import runtime_of

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
PageNumber = Annotated[int, QueryParameter(name="page")]


def _filter(actor: str | None, route: str | None, status: str | None, workspace: str | None, since: str | None, until: str | None) -> reports.AuditFilter:
    def number(value: str | None) -> int | None:
        return int(value) if value and value.strip().lstrip("-").isdigit() else None

    return reports.AuditFilter(
        actor=(actor or "").strip()[:200], route=(route or "").strip()[:200], status=number(status),
        workspace_id=number(workspace), since=(since or "").strip()[:40], until=(until or "").strip()[:40],
    )


def _filter_form(f: reports.AuditFilter) -> str:
    def field(name: str, label: str, value: Any, hint: str = "") -> str:
        return f'<label>{esc(label)}<input name="{name}" value="{esc("" if value is None else value)}" placeholder="{esc(hint)}"></label>'

    return (
        '<form method="get" action="/admin/audit" class="row">'
        + field("actor", "Actor", f.actor, "apikey:key_… or admin:name")
        + field("route", "Route contains", f.route)
        + field("status", "Status", f.status)
        + field("workspace", "Workspace", f.workspace_id)
        + field("since", "From (UTC, ISO)", f.since, "2026-12-01")
        + field("until", "Before (UTC, ISO)", f.until)
        + '<button type="submit">Filter</button></form>'
    )


def _query(f: reports.AuditFilter) -> dict[str, Any]:
    return {"actor": f.actor, "route": f.route, "status": f.status, "workspace": f.workspace_id, "since": f.since, "until": f.until}


@get("/audit", sync_to_thread=True)
def audit(
    request: Request[Any, Any, Any], page_number: PageNumber = 1, actor: str | None = None, route: str | None = None,
    status: str | None = None, workspace: str | None = None, since: str | None = None, until: str | None = None,
) -> Response[str]:
    who = auth.current(request)
    f = _filter(actor, route, status, workspace, since, until)
    result = reports.audit_page(runtime_of(request).audit.database, f, page_number)
    rows = [
        [esc(r["seq"]), esc(r["time"]), esc(r["actor"]), esc(r["workspace_id"]), esc(r["environment"]), esc(r["method"]),
         f"<code>{esc(r['route'])}</code>", esc(r["status"]), esc(r["target"]), esc(r["client"])]
        for r in result.rows
    ]
    query = _query(f)
    exports = " · ".join(
        f'<a href="/admin/audit/export?{esc(_urlencode({**query, "format": kind}))}">Export {kind.upper()}</a>' for kind in ("csv", "json")
    )
    verify = (
        f'<form method="post" action="/admin/audit/verify" class="inline">{csrf_field(who.csrf)}'
        '<button type="submit">Verify chain</button></form>'
    )
    body = _filter_form(f) + f"<p>{exports} · {verify}</p>" + table(
        ["Seq", "Time (UTC)", "Actor", "Workspace", "Env", "Method", "Route", "Status", "Target", "Client"], rows, "Audit entries, newest first"
    ) + pager("/admin/audit", result, query)
    return page("Audit log", body, admin=who.name, csrf=who.csrf, current="/admin/audit")


def _urlencode(query: dict[str, Any]) -> str:
    from urllib.parse import urlencode

    return urlencode({k: v for k, v in query.items() if v not in (None, "")})


@get("/audit/export", sync_to_thread=True)
def audit_export(
    request: Request[Any, Any, Any], format: str = "json", actor: str | None = None, route: str | None = None,
    status: str | None = None, workspace: str | None = None, since: str | None = None, until: str | None = None,
) -> Stream:
    auth.current(request)
    names, cursor = reports.audit_rows(runtime_of(request).audit.database, _filter(actor, route, status, workspace, since, until))

    def as_csv() -> Iterator[str]:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(names)
        for row in cursor:
            writer.writerow(row)
            if out.tell() > 65536:
                yield out.getvalue()
                out.seek(0)
                out.truncate()
        yield out.getvalue()

    def as_json() -> Iterator[str]:  # JSON lines, as `appliance audit export`
        for row in cursor:
            yield json.dumps(dict(zip(names, row, strict=True)), ensure_ascii=False) + "\n"

    kind = "csv" if format == "csv" else "json"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Stream(
        as_csv() if kind == "csv" else as_json(),
        media_type="text/csv" if kind == "csv" else "application/x-ndjson",
        headers={"content-disposition": f'attachment; filename="audit-{stamp}.{"csv" if kind == "csv" else "jsonl"}"'},
    )


@post("/audit/verify", sync_to_thread=True, status_code=200)
def audit_verify(request: Request[Any, Any, Any], data: Form) -> Response[str]:
    who = auth.acting(request, data)
    result = runtime_of(request).audit.verify()
    if result.ok:
        body = f'<p role="status" class="notice" id="verify-result">Chain intact: {result.entries} entries, anchored head matches.</p>'
    else:
        items = "".join(f"<li>{esc(p)}</li>" for p in result.problems)
        body = f'<div role="alert" class="error" id="verify-result"><p>Verification FAILED ({result.entries} entries):</p><ul>{items}</ul></div>'
    return page("Audit log: verify chain", body + '<p><a href="/admin/audit">Back to the audit log</a></p>', admin=who.name, csrf=who.csrf, current="/admin/audit")


def _backups_body(request: Request[Any, Any, Any], csrf: str) -> str:
    described = backup_verify.describe(runtime_of(request).backups)
    rows = [
        [esc(d["database"]), esc(len(d["snapshots"])), esc(d["restorable_from"] or "none yet"),
         esc(d["snapshots"][-1]["taken"] if d["snapshots"] else "—"), esc(d["segments"]), esc(f"{d['log_bytes'] / 1024:.0f} kB")]
        for d in described
    ]
    points = sorted({s["taken"] for d in described for s in d["snapshots"]}, reverse=True)[:100]
    timeline = "".join(f"<li><time>{esc(p)}</time></li>" for p in points)
    return (
        "<p>Every time from the oldest snapshot until now can be restored (`appliance restore --to TIME`, "
        "server stopped for an in-place restore). Snapshots are the fixed points; the change log fills the time between.</p>"
        f'<form method="post" action="/admin/backups/verify">{csrf_field(csrf)}<button type="submit">Verify backups</button></form>'
        + table(["Database", "Snapshots", "Restorable from", "Newest snapshot", "Log segments", "Log size"], rows, "Backups per database")
        + f'<h2>Restore points (snapshots, newest first)</h2><ol class="timeline">{timeline}</ol>'
    )


@get("/backups", sync_to_thread=True)
def backups(request: Request[Any, Any, Any]) -> Response[str]:
    who = auth.current(request)
    return page("Backups", _backups_body(request, who.csrf), admin=who.name, csrf=who.csrf, current="/admin/backups")


@post("/backups/verify", sync_to_thread=True, status_code=200)
def backups_verify(request: Request[Any, Any, Any], data: Form) -> Response[str]:
    who = auth.acting(request, data, "backups")
    report = backup_verify.verify(runtime_of(request).backups)
    lines = "".join(f"<li><code>{esc(line)}</code></li>" for line in report.lines)
    verdict = (
        f'<div role="status" class="notice" id="verify-result"><p>Backups verified: every segment decrypts and restores match.</p><ul>{lines}</ul></div>'
        if report.ok
        else f'<div role="alert" class="error" id="verify-result"><p>Backup verification FAILED:</p><ul>{lines}</ul></div>'
    )
    return page("Backups", verdict + _backups_body(request, who.csrf), admin=who.name, csrf=who.csrf, current="/admin/backups")


@get("/usage", sync_to_thread=True)
def usage(request: Request[Any, Any, Any]) -> Response[str]:
    who = auth.current(request)
    found = reports.usage(runtime_of(request).audit.database)
    rows = [
        [esc(u.workspace_id), f"<code>{esc(u.actor)}</code>", esc(u.today), esc(f"{u.usual:g}"),
         '<strong class="flag">anomaly: &#8805;10&times; usual</strong>' if u.anomalous else "—"]
        for u in sorted(found, key=lambda u: (not u.anomalous, -u.today))
    ]
    body = (
        f"<p>API calls per workspace and key from the audit log: today (UTC) against the key's usual day, the median of the "
        f"previous {reports.USAGE_DAYS} days. A key making at least {reports.ANOMALY_FACTOR}&times; its usual calls "
        f"(and at least {reports.ANOMALY_FLOOR}) is flagged.</p>"
        + table(["Workspace", "Key", "Calls today", "Usual per day", "Flag"], rows, "Usage per workspace and key")
    )
    return page("Usage", body, admin=who.name, csrf=who.csrf, current="/admin/usage")


OPERATION_HANDLERS = [audit, audit_export, audit_verify, backups, backups_verify, usage]
