"""The LTI routes (docs/lti.md, "Routes"): they parse the form or query, call one service of
appliance.lti.launch in a thread (the library is synchronous and writes the control database), and
shape the answer: a redirect, the course picker, the form back to the LMS, or a refusal page.

- `GET|POST /lti/login`: OIDC login initiation -> 302 to the platform's authorisation URL.
- `POST /lti/launch`: the id_token -> 303 to the course player (a signed embed URL), or the picker.
- `POST /lti/deep-link`: an id_token (deep-linking request) -> the picker; a picked course -> the
  signed deep-linking response posted back to the platform.
- `GET /lti/jwks`: the tool's public keys (current and previous).

Each request's audit entry names the platform (actor `lti:platform:<id>`) and, on a refusal, the
reason (`lti-refused:<reason>`); refusals are HTML pages with a 4xx status.
"""

from __future__ import annotations

import html
import re
import secrets
from typing import Any
from urllib.parse import urlsplit

import anyio
from litestar import MediaType, Request, Response, get, post
from litestar.datastructures import Cookie

from appliance.embeds import origins
from appliance.lti import keys, launch
from appliance.lti.launch import LtiRefused, Outcome
from appliance.server import public
from appliance.server.context import context_of, runtime_of
from appliance.workspaces.service import Principal

STYLE = "body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.5}"


def _page(title: str, body: str, status: int = 200, *, script_nonce: str | None = None,
          frame_ancestors: str = "*", form_action: str = "'none'") -> Response[str]:
    scripts = f"'nonce-{script_nonce}'" if script_nonce else "'none'"
    csp = (
        f"default-src 'none'; style-src 'unsafe-inline'; script-src {scripts}; base-uri 'none'; "
        f"form-action {form_action}; frame-ancestors {frame_ancestors}"
    )
    document = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>'
        f"<body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )
    return Response(document, status_code=status, media_type=MediaType.HTML, headers={"content-security-policy": csp})


def _refusal(request: Request[Any, Any, Any], refused: LtiRefused) -> Response[str]:
    ctx = context_of(request)
    ctx.target = f"lti-refused:{refused.reason}"
    return _page("This LTI launch was refused", f"<p>{html.escape(refused.message)}</p>"
                 f"<p>Reason code: <code>{html.escape(refused.reason)}</code> (also in the audit log).</p>"
                 "<p>Ask the LMS administrator to check the tool's registration (docs/lti.md).</p>",
                 refused.status)


def _attribute(request: Request[Any, Any, Any], outcome: Outcome) -> None:
    ctx = context_of(request)
    if outcome.platform_id is not None:
        ctx.actor = f"lti:platform:{outcome.platform_id}"
    if outcome.workspace_id is not None and outcome.environment is not None:
        ctx.principal = Principal(
            workspace_id=outcome.workspace_id, environment=outcome.environment, key_id=ctx.actor
        )
    ctx.target = outcome.target


async def _params(request: Request[Any, Any, Any]) -> dict[str, str]:
    values: dict[str, str] = {k: str(v) for k, v in request.query_params.items()}
    if request.method == "POST":
        form = await request.form()
        values.update({k: v for k, v in form.items() if isinstance(v, str)})
    return values


def _secure(request: Request[Any, Any, Any]) -> bool:
    return public.base_url(request).startswith("https://")


def _with_cookies(response: Response[Any], outcome: Outcome, secure: bool) -> Response[Any]:
    for name, (value, exp) in outcome.cookies.items():
        # the launch POST comes from the LMS's site: over HTTPS the state cookie must be SameSite=None
        response.set_cookie(
            Cookie(key=name, value=value, max_age=exp, path="/lti/", httponly=True, secure=secure,
                   samesite="none" if secure else "lax")
        )
    return response


async def _run(request: Request[Any, Any, Any], service: Any) -> Outcome | Response[str]:
    runtime = runtime_of(request)
    base = public.base_url(request)
    try:
        lti_request = launch.make_request(await _params(request), dict(request.cookies), _secure(request))
        outcome: Outcome = await anyio.to_thread.run_sync(lambda: service(runtime, lti_request, base))
    except LtiRefused as refused:
        return _refusal(request, refused)
    _attribute(request, outcome)
    return outcome


@get("/lti/login", include_in_schema=False)
async def login_get(request: Request[Any, Any, Any]) -> Response[Any]:
    return await _login(request)


@post("/lti/login", include_in_schema=False, status_code=302)
async def login_post(request: Request[Any, Any, Any]) -> Response[Any]:
    return await _login(request)


async def _login(request: Request[Any, Any, Any]) -> Response[Any]:
    result = await _run(request, launch.login)
    if isinstance(result, Response):
        return result
    response: Response[Any] = Response("", status_code=302, headers={"location": str(result.redirect)})
    return _with_cookies(response, result, _secure(request))


def _picker_page(request: Request[Any, Any, Any], outcome: Outcome) -> Response[str]:
    picker = outcome.picker or {}
    courses = picker.get("courses", [])
    if not courses:
        items = "<p>This workspace has no published course yet.</p>"
    else:
        items = "<fieldset><legend>Published courses</legend>" + "".join(
            f'<div><input type="radio" name="course" id="c{c["id"]}" value="{c["id"]}" required>'
            f'<label for="c{c["id"]}">{html.escape(str(c["title"] or "Untitled course"))}</label></div>'
            for c in courses
        ) + "</fieldset><p><button type=\"submit\">Add the course</button></p>"
    body = (
        '<p>Pick the course to add to the LMS.</p><form method="post" action="/lti/deep-link">'
        f'<input type="hidden" name="ticket" value="{html.escape(str(picker.get("ticket", "")))}">{items}</form>'
    )
    return _page("Choose a course", body, form_action="'self'", frame_ancestors=_ancestors(request, outcome))


def _ancestors(request: Request[Any, Any, Any], outcome: Outcome) -> str:
    if outcome.workspace_id is None or outcome.environment is None:
        return "'none'"
    allowed = origins.allowed_origins(runtime_of(request).control, outcome.workspace_id, outcome.environment)
    return origins.frame_ancestors(allowed, outcome.environment)


def _launch_answer(request: Request[Any, Any, Any], result: Outcome | Response[str]) -> Response[Any]:
    if isinstance(result, Response):
        return result
    if result.picker is not None:
        return _picker_page(request, result)
    return Response("", status_code=303, headers={"location": str(result.redirect)})


@post("/lti/launch", include_in_schema=False, status_code=303)
async def launch_post(request: Request[Any, Any, Any]) -> Response[Any]:
    return _launch_answer(request, await _run(request, launch.launch))


@post("/lti/deep-link", include_in_schema=False, status_code=200)
async def deep_link_post(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await request.form()
    if "ticket" not in form:
        return _launch_answer(request, await _run(request, launch.launch))
    result = await _run(request, launch.deep_link_response)
    if isinstance(result, Response):
        return result
    fields = result.form or {}
    nonce = secrets.token_urlsafe(16)
    action = html.escape(fields.get("action", ""))
    body = (
        f'<form id="back" method="post" action="{action}">'
        f'<input type="hidden" name="JWT" value="{html.escape(fields.get("JWT", ""))}">'
        '<p>Returning the course to the LMS…</p><p><button type="submit">Continue</button></p></form>'
        f'<script nonce="{nonce}">document.getElementById("back").submit()</script>'
    )
    return _page("Course chosen", body, script_nonce=nonce, form_action=_origin(fields.get("action", "")),
                 frame_ancestors=_ancestors(request, result))


@get("/lti/jwks", include_in_schema=False, sync_to_thread=True)
def jwks(request: Request[Any, Any, Any]) -> dict[str, Any]:
    context_of(request).target = "lti:jwks"
    return keys.jwks(runtime_of(request).keyring)


def _origin(url: str) -> str:
    """The CSP source of the platform's return URL: its origin only, or nothing."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or not re.fullmatch(r"[A-Za-z0-9.\-:\[\]]+", parts.netloc):
        return "'none'"
    return f"{parts.scheme}://{parts.netloc}"


LTI_HANDLERS = [login_get, login_post, launch_post, deep_link_post, jwks]
