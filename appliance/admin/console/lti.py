"""The console's LTI page (docs/lti.md): the platforms each workspace registered, a form to register
one (the platform's public keys pasted as a JWKS or PEM), removal, and the values an LMS asks for."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from appliance.admin.console import auth
from appliance.admin.console.html import csrf_field, esc, page, post_button, table
from appliance.errors import DomainError, Invalid
from appliance.lti import platforms
from appliance.server import public
from appliance.server.context import runtime_of
from appliance.workspaces import service

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
DONE = {"added": "Platform registered.", "removed": "Platform removed: its launches are refused from now on."}
FIELDS = (
    ("issuer", "Issuer (Platform ID)", "https://moodle.example.lan"),
    ("client_id", "Client ID", ""),
    ("deployment_ids", "Deployment IDs (comma separated)", "1"),
    ("auth_login_url", "Authentication request URL", "https://moodle.example.lan/mod/lti/auth.php"),
    ("auth_token_url", "Access token URL", "https://moodle.example.lan/mod/lti/token.php"),
)


def _body(request: Request[Any, Any, Any], csrf: str, form: dict[str, str] | None = None) -> str:
    runtime = runtime_of(request)
    base = public.base_url(request)
    tool = table(
        ["LMS field", "Value"],
        [
            ["Tool URL / Target Link URI / Redirection URI", f"<code>{esc(base)}/lti/launch</code>"],
            ["Initiate login URL / OpenID Connect Initiation Url", f"<code>{esc(base)}/lti/login</code>"],
            ["Content Selection URL / deep-linking Redirection URI", f"<code>{esc(base)}/lti/deep-link</code>"],
            ["Public keyset / Public JWK URL", f"<code>{esc(base)}/lti/jwks</code>"],
        ],
        "What to enter in the LMS",
    )
    rows = [
        [
            esc(p["id"]),
            f"{esc(p['workspace'])}, {esc(p['environment'])}",
            f"<code>{esc(p['issuer'])}</code>",
            esc(p["clientId"]),
            esc(", ".join(p["deploymentIds"])),
            esc(", ".join(p["keys"]) or p["keysetUrl"]),
            post_button("/admin/lti/remove", f"Remove platform {p['id']}", csrf, {"platform": p["id"]}, danger=True),
        ]
        for p in map(platforms.public_view, platforms.list_platforms(runtime.control))
    ]
    values = form or {}
    workspaces = "".join(
        f'<option value="{esc(w["id"])}:{env}">{esc(w["id"])} {esc(w["name"])}, {env}</option>'
        for w in service.list_workspaces(runtime.control)
        for env in service.ENVIRONMENTS
    )
    inputs = "".join(
        f'<label>{esc(label)}<input name="{name}" required value="{esc(values.get(name, ""))}" placeholder="{esc(hint)}"></label>'
        for name, label, hint in FIELDS
    )
    add = (
        f'<h2>Register a platform</h2><form method="post" action="/admin/lti/add">{csrf_field(csrf)}'
        f'<label>Workspace and environment<select name="target">{workspaces}</select></label>{inputs}'
        '<label>The platform\'s public keys (JWKS JSON or PEM public key; nothing is fetched)'
        f'<textarea name="keyset" rows="6" required>{esc(values.get("keyset", ""))}</textarea></label>'
        '<button type="submit">Register platform</button></form>'
    )
    return tool + "<h2>Registered platforms</h2>" + table(
        ["Id", "Workspace", "Issuer", "Client ID", "Deployments", "Keys", ""], rows, "LTI platforms"
    ) + add


@get("/lti", sync_to_thread=True)
def lti_page(request: Request[Any, Any, Any], done: str | None = None) -> Response[str]:
    who = auth.current(request)
    return page("LTI platforms", _body(request, who.csrf), admin=who.name, csrf=who.csrf, current="/admin/lti",
                notice=DONE.get(done or "", ""))


@post("/lti/add", sync_to_thread=True, status_code=200)
def lti_add(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    who = auth.acting(request, data, "lti-platform:new")
    workspace, _, env = (data.get("target") or "").partition(":")
    try:
        if not workspace.isdigit():
            raise Invalid("pick a workspace and environment")
        platform_id = platforms.add(
            runtime_of(request).control,
            workspace_id=int(workspace),
            environment=env,
            issuer=data.get("issuer", ""),
            client_id=data.get("client_id", ""),
            deployment_ids=[d for d in (data.get("deployment_ids") or "").split(",") if d.strip()],
            auth_login_url=data.get("auth_login_url", ""),
            auth_token_url=data.get("auth_token_url", ""),
            keyset=data.get("keyset", ""),
        )
    except DomainError as exc:
        return page("LTI platforms", _body(request, who.csrf, data), admin=who.name, csrf=who.csrf,
                    current="/admin/lti", error=str(exc), status=422)
    auth.acting(request, data, f"lti-platform:{platform_id}")
    return Redirect("/admin/lti?done=added", status_code=303)


@post("/lti/remove", sync_to_thread=True, status_code=200)
def lti_remove(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    platform = data.get("platform") or ""
    auth.acting(request, data, f"lti-platform:{platform}")
    if not platform.isdigit() or not platforms.remove(runtime_of(request).control, int(platform)):
        raise Invalid("no such platform")
    return Redirect("/admin/lti?done=removed", status_code=303)


LTI_CONSOLE_HANDLERS = [lti_page, lti_add, lti_remove]
