"""Getting in and out: the first-run setup link, login (throttled, lockout audited), logout."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from appliance.admin import accounts, sessions, setup
from appliance.admin.console import auth
from appliance.admin.console.html import csrf_field, esc, message_page, page
from appliance.errors import DomainError
from appliance.security.audit import AuditEvent
from appliance.server.context import context_of, runtime_of

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]

SETUP_REFUSED = {
    setup.TokenState.UNKNOWN: "This setup link is not valid. Print a new one on the server with `appliance admin setup-link`.",
    setup.TokenState.USED: "This setup link has been used already; each link works once. Log in instead.",
    setup.TokenState.EXPIRED: "This setup link has expired (links are valid for 30 minutes). "
    "Print a new one on the server with `appliance admin setup-link`.",
    setup.TokenState.CLOSED: "Setup is complete: an administrator exists. Log in instead.",
}


def _setup_form(token: str, csrf: str, name: str = "") -> str:
    return (
        "<p>Choose the first administrator's name and passphrase (at least "
        f"{accounts.MIN_PASSPHRASE} characters). This link works once.</p>"
        f'<form method="post" action="/admin/setup/{esc(token)}" class="stack">{csrf_field(csrf)}'
        f'<label>Administrator name<input name="name" autocomplete="username" required value="{esc(name)}"></label>'
        '<label>Passphrase<input type="password" name="passphrase" autocomplete="new-password" required></label>'
        '<label>Passphrase again<input type="password" name="again" autocomplete="new-password" required></label>'
        '<button type="submit">Create administrator</button></form>'
    )


@get("/setup/{token:str}", sync_to_thread=True)
def setup_page(request: Request[Any, Any, Any], token: str) -> Response[str]:
    state = setup.state(runtime_of(request).control, token)
    if state is not setup.TokenState.VALID:
        return message_page("Setup link refused", SETUP_REFUSED[state], 410 if state is not setup.TokenState.UNKNOWN else 404, ("/admin/login", "Log in"))
    csrf, cookie = auth.pre_cookie(request)
    return page("Set up the console", _setup_form(token, csrf), cookies=[cookie] if cookie else None)


@post("/setup/{token:str}", sync_to_thread=True, status_code=200)
def setup_submit(request: Request[Any, Any, Any], token: str, data: Form) -> Response[Any]:
    if not auth.pre_csrf_ok(request, data.get("csrf")):
        return message_page("Form refused", "The form was stale or came from another site; reload the link.", 403)
    runtime = runtime_of(request)
    name = data.get("name", "").strip()
    if data.get("passphrase", "") != data.get("again", ""):
        return page("Set up the console", _setup_form(token, data["csrf"], name), error="The two passphrases differ", status=422)
    try:
        state, admin = setup.complete(runtime.control, token, name, data.get("passphrase", ""))
    except DomainError as exc:
        return page("Set up the console", _setup_form(token, data["csrf"], name), error=str(exc), status=422)
    if admin is None:
        return message_page("Setup link refused", SETUP_REFUSED[state], 410 if state is not setup.TokenState.UNKNOWN else 404, ("/admin/login", "Log in"))
    context_of(request).actor = f"admin:{admin.name}"
    context_of(request).target = f"admin:{admin.name}"
    value = sessions.start(runtime.control, admin.id, runtime.settings.admin.session_hours)
    return Redirect("/admin/?done=setup", status_code=303, cookies=[auth.session_cookie(request, value)])


def _login_form(csrf: str, name: str = "") -> str:
    return (
        f'<form method="post" action="/admin/login" class="stack">{csrf_field(csrf)}'
        f'<label>Administrator name<input name="name" autocomplete="username" required value="{esc(name)}"></label>'
        '<label>Passphrase<input type="password" name="passphrase" autocomplete="current-password" required></label>'
        '<button type="submit">Log in</button></form>'
    )


@get("/login", sync_to_thread=True)
def login_page(request: Request[Any, Any, Any]) -> Response[str]:
    csrf, cookie = auth.pre_cookie(request)
    return page("Log in", _login_form(csrf), cookies=[cookie] if cookie else None)


@post("/login", sync_to_thread=True, status_code=200)
def login_submit(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    if not auth.pre_csrf_ok(request, data.get("csrf")):
        return message_page("Form refused", "The form was stale or came from another site; reload the page.", 403, ("/admin/login", "Log in"))
    runtime = runtime_of(request)
    name = data.get("name", "").strip()[:64]
    ctx = context_of(request)
    ctx.target = f"admin:{name}"  # the audit entry of a failed login names the account tried
    client = request.client.host if request.client else "unknown"
    if not auth.throttle_of(request).allow(client):
        return page("Log in", _login_form(data["csrf"], name), error="Too many login attempts from here; wait a few minutes", status=429)
    settings = runtime.settings.admin
    try:
        admin = accounts.login(runtime.control, name, data.get("passphrase", ""), settings.max_failed_logins, settings.lockout_minutes)
    except accounts.LoginRefused as refused:
        if refused.locked_now:
            runtime.audit.record_sync(
                AuditEvent(actor="console", method="LOCK", route="admin lockout", status=423, target=f"admin:{name}",
                           request_id=ctx.request_id, client=client)
            )
        return page("Log in", _login_form(data["csrf"], name), error=str(refused), status=423 if refused.locked else 401)
    ctx.actor = f"admin:{admin.name}"
    value = sessions.start(runtime.control, admin.id, runtime.settings.admin.session_hours)
    return Redirect("/admin/", status_code=303, cookies=[auth.session_cookie(request, value)])


@post("/logout", sync_to_thread=True, status_code=200)
def logout(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    auth.acting(request, data)
    sessions.end(runtime_of(request).control, request.cookies.get(sessions.COOKIE, ""))
    return Redirect("/admin/login", status_code=303, cookies=[auth.session_cookie(request, "", clear=True)])


ENTRY_HANDLERS = [setup_page, setup_submit, login_page, login_submit, logout]
