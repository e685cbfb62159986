"""Overview, workspaces and entitlements, API keys, embed origins."""

from __future__ import annotations

import shutil
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, QueryParameter
from litestar.response import Redirect

from appliance import __version__
from appliance.admin import accounts, reports
from appliance.admin.console import auth
from appliance.admin.console.html import csrf_field, esc, message_page, page, pager, post_button, table
from appliance.embeds import origins
from appliance.errors import DomainError, Invalid
from appliance.server.context import runtime_of
from appliance.workspaces import service

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
DONE = {
    "setup": "Administrator created; you are signed in.",
    "entitlement": "Entitlement changed.",
    "revoked": "Key revoked: it stops working at once.",
    "origin-added": "Origin added.",
    "origin-removed": "Origin removed.",
    "cancelled": "Job cancelled.",
    "model-added": "Model added to the local manifest: select it with [ai] model and restart to use it.",
    "test-queued": "Test delivery queued; it appears in the delivery log when sent.",
}


def notice(done: str | None) -> str:
    return DONE.get(done or "", "")


def _int(value: str | None, what: str) -> int:
    try:
        return int(value or "")
    except ValueError:
        raise Invalid(f"{what} must be a number") from None


@get("/", sync_to_thread=True)
def overview(request: Request[Any, Any, Any], done: str | None = None) -> Response[str]:
    who = auth.current(request)
    runtime = runtime_of(request)
    checks = []
    for name, database in (("control database", runtime.control), ("audit database", runtime.audit.database)):
        try:
            database.read().execute("SELECT 1").fetchone()
            checks.append((name, '<span class="ok">ok</span>'))
        except Exception as exc:
            checks.append((name, f'<span class="flag">{esc(type(exc).__name__)}</span>'))
    disk = shutil.disk_usage(runtime.data_dir)
    ai = getattr(request.app.state, "ai", None)
    control = runtime.control.read()
    counts = {
        "Workspaces": control.execute("SELECT count(*) FROM workspaces").fetchone()[0],
        "Active API keys": control.execute("SELECT count(*) FROM api_keys WHERE revoked IS NULL").fetchone()[0],
        "Administrators": accounts.count(runtime.control),
        "Audit entries": runtime.audit.database.read().execute("SELECT coalesce(max(seq), 0) FROM audit").fetchone()[0],
    }
    facts = [
        ("Version", esc(__version__)),
        *checks,
        ("Disk", f"{disk.free / 2**30:.1f} GB free of {disk.total / 2**30:.1f} GB"
         + ("" if runtime.disk.writable() else ' <span class="flag">full: writes refused</span>')),
        ("On-box AI", esc(ai.status() if ai is not None else "off")),
        *((k, esc(v)) for k, v in counts.items()),
    ]
    body = '<dl class="facts">' + "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>"
    return page("Overview", body, admin=who.name, csrf=who.csrf, current="/admin/", notice=notice(done))


@get("/workspaces", sync_to_thread=True)
def workspaces(request: Request[Any, Any, Any], done: str | None = None) -> Response[str]:
    who = auth.current(request)
    rows = []
    for w in service.list_workspaces(runtime_of(request).control):
        flags = " ".join(
            post_button(
                "/admin/workspaces/entitlement",
                f"{name}: {'on' if on else 'off'}",
                who.csrf,
                {"workspace": w["id"], "name": name, "state": "off" if on else "on"},
            )
            for name, on in w["entitlements"].items()
        )
        envs = "; ".join(f"{env}: {len(w['allowed_origins'].get(env, []))} origins" for env in service.ENVIRONMENTS)
        rows.append([esc(w["id"]), esc(w["name"]), esc(w["created"]), esc(envs), flags])
    body = "<p>Each workspace has a test and a production environment, each its own encrypted database. " \
        "Press an entitlement to switch it.</p>" + table(
            ["Id", "Name", "Created", "Environments", "Entitlements (press to switch)"], rows, "Workspaces"
        )
    return page("Workspaces", body, admin=who.name, csrf=who.csrf, current="/admin/workspaces", notice=notice(done))


@post("/workspaces/entitlement", sync_to_thread=True, status_code=200)
def entitlement(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    workspace_id = _int(data.get("workspace"), "workspace")
    auth.acting(request, data, f"workspace:{workspace_id}")
    service.set_entitlement(runtime_of(request).control, workspace_id, data.get("name", ""), data.get("state") == "on")
    return Redirect("/admin/workspaces?done=entitlement", status_code=303)


def _keys_body(request: Request[Any, Any, Any], csrf: str, page_number: int) -> str:
    runtime = runtime_of(request)
    result = reports.key_page(runtime.control, runtime.audit.database, page_number)
    rows = [
        [
            f"<code>{esc(k['key_id'])}</code>", esc(k["workspace_id"]), esc(k["mode"]), f"…{esc(k['hint'])}",
            esc(k["created"]), esc(k["last_used"] or "never"),
            esc(f"revoked {k['revoked']}") if k["revoked"]
            else post_button("/admin/keys/revoke", f"Revoke {k['key_id']}", csrf, {"key_id": k["key_id"]}, danger=True),
        ]
        for k in result.rows
    ]
    options = "".join(f'<option value="{w["id"]}">{esc(w["id"])}: {esc(w["name"])}</option>' for w in service.list_workspaces(runtime.control))
    create = (
        f'<h2>Create a key</h2><form method="post" action="/admin/keys/create" class="row">{csrf_field(csrf)}'
        f'<label>Workspace<select name="workspace">{options}</select></label>'
        '<label>Mode<select name="mode"><option>test</option><option>production</option></select></label>'
        '<button type="submit">Create key</button></form>'
    )
    return create + "<h2>Keys</h2>" + table(
        ["Key id", "Workspace", "Mode", "Ends in", "Created", "Last used", "State"], rows, "API keys, newest first"
    ) + pager("/admin/keys", result)


@get("/keys", sync_to_thread=True)
def keys(request: Request[Any, Any, Any], page_number: Annotated[int, QueryParameter(name="page")] = 1, done: str | None = None) -> Response[str]:
    who = auth.current(request)
    return page("API keys", _keys_body(request, who.csrf, page_number), admin=who.name, csrf=who.csrf, current="/admin/keys", notice=notice(done))


@post("/keys/create", sync_to_thread=True, status_code=200)
def key_create(request: Request[Any, Any, Any], data: Form) -> Response[str]:
    workspace_id = _int(data.get("workspace"), "workspace")
    who = auth.acting(request, data, f"workspace:{workspace_id}")
    runtime = runtime_of(request)
    key_id, header = service.create_api_key(runtime.control, runtime.pepper, workspace_id, data.get("mode", ""))
    request.scope["appliance"].target = key_id  # type: ignore[typeddict-item]
    shown = (
        f"<p>Key <code>{esc(key_id)}</code> for workspace {esc(workspace_id)} ({esc(data.get('mode'))}). "
        "Copy the Authorization value now: it is shown only this once and only its keyed hash is stored.</p>"
        f'<output class="secret" aria-label="Authorization value">{esc(header)}</output>'
    )
    return page("API keys", shown + _keys_body(request, who.csrf, 1), admin=who.name, csrf=who.csrf, current="/admin/keys", status=201)


@post("/keys/revoke", sync_to_thread=True, status_code=200)
def key_revoke(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    key_id = data.get("key_id", "")
    auth.acting(request, data, key_id)
    try:
        service.revoke_api_key(runtime_of(request).control, key_id)
    except service.NotFound as exc:
        return message_page("Not revoked", str(exc), 404, ("/admin/keys", "Back to keys"))
    return Redirect("/admin/keys?done=revoked", status_code=303)


def _origins_body(request: Request[Any, Any, Any], csrf: str, verdict: str = "") -> str:
    runtime = runtime_of(request)
    parts = []
    for w in service.list_workspaces(runtime.control):
        for env in service.ENVIRONMENTS:
            listed = w["allowed_origins"].get(env, [])
            rows = [
                [f"<code>{esc(o)}</code>", post_button("/admin/origins/remove", f"Remove {o}", csrf, {"workspace": w["id"], "env": env, "origin": o}, danger=True)]
                for o in listed
            ]
            rule = "anyone may frame test embeds" if env == "test" else "no site may frame production embeds"
            empty = f"<p>None configured for {esc(w['name'])} {env}: {rule}.</p>"
            parts.append(
                f"<h2>Workspace {esc(w['id'])} ({esc(w['name'])}), {env}</h2>"
                + (table(["Origin", ""], rows, f"Origins allowed to frame {env} embeds") if rows else empty)
                + f'<form method="post" action="/admin/origins/add" class="row">{csrf_field(csrf)}'
                f'<input type="hidden" name="workspace" value="{esc(w["id"])}"><input type="hidden" name="env" value="{env}">'
                f'<label>Add an origin (scheme://host[:port])<input name="origin" required placeholder="https://lms.example.com"></label>'
                '<button type="submit">Add origin</button></form>'
            )
    options = "".join(
        f'<option value="{w["id"]}:{env}">{esc(w["id"])} {esc(w["name"])}, {env}</option>'
        for w in service.list_workspaces(runtime.control)
        for env in service.ENVIRONMENTS
    )
    test = (
        '<h2>Test an origin</h2><p>Would a page at this origin be allowed to frame this environment\'s embeds?</p>'
        f'<form method="get" action="/admin/origins" class="row"><label>Environment<select name="target">{options}</select></label>'
        '<label>Origin<input name="check" required placeholder="https://lms.example.com"></label>'
        '<button type="submit">Test this origin</button></form>'
    ) + verdict
    return test + "".join(parts)


@get("/origins", sync_to_thread=True)
def origins_page(request: Request[Any, Any, Any], check: str | None = None, target: str | None = None, done: str | None = None) -> Response[str]:
    who = auth.current(request)
    verdict = ""
    if check and target:
        workspace, _, env = target.partition(":")
        try:
            origin = origins.normalise_origin(check)
            listed = origins.allowed_origins(runtime_of(request).control, _int(workspace, "workspace"), env)
            refused = origins.framing_refused(listed, env, origin)
            word = '<strong class="flag">refused</strong>' if refused else '<strong class="ok">allowed</strong>'
            verdict = f'<p role="status" id="origin-verdict">{esc(origin)} would be {word} to frame workspace {esc(workspace)} {esc(env)} embeds.</p>'
        except (DomainError, origins.OriginError, service.NotFound) as exc:
            verdict = f'<p role="alert" class="error" id="origin-verdict">{esc(exc)}</p>'
    return page("Embed origins", _origins_body(request, who.csrf, verdict), admin=who.name, csrf=who.csrf, current="/admin/origins", notice=notice(done))


def _change_origins(request: Request[Any, Any, Any], data: dict[str, str], adding: bool) -> Response[Any]:
    workspace_id = _int(data.get("workspace"), "workspace")
    who = auth.acting(request, data, f"workspace:{workspace_id}")
    origin = data.get("origin", "").strip()
    try:
        origins.set_origins(
            runtime_of(request).control, workspace_id, data.get("env", ""), [origin] if adding else [], [] if adding else [origin]
        )
    except origins.OriginError as exc:
        return page("Embed origins", _origins_body(request, who.csrf), admin=who.name, csrf=who.csrf, current="/admin/origins", error=str(exc), status=422)
    return Redirect(f"/admin/origins?done=origin-{'added' if adding else 'removed'}", status_code=303)


@post("/origins/add", sync_to_thread=True, status_code=200)
def origin_add(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    return _change_origins(request, data, True)


@post("/origins/remove", sync_to_thread=True, status_code=200)
def origin_remove(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    return _change_origins(request, data, False)


PAGE_HANDLERS = [overview, workspaces, entitlement, keys, key_create, key_revoke, origins_page, origin_add, origin_remove]
