"""The LRS endpoints of every workspace environment with their xAPI delivery logs, and removal.
Endpoints are added with `appliance lrs add` (the secret goes through stdin, never a web form)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from appliance.admin.console import auth
from appliance.admin.console.html import esc, message_page, page, post_button, table
from appliance.errors import Invalid, NotFound
from appliance.server.context import runtime_of
from appliance.workspaces import service
from appliance.xapi import outbox

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
RECENT = 20  # statements shown per endpoint


@get("/lrs", sync_to_thread=True)
def lrs_page(request: Request[Any, Any, Any], done: str | None = None) -> Response[str]:
    who = auth.current(request)
    runtime = runtime_of(request)
    parts = []
    for workspace_id, env in runtime.environment_ids():
        reader = runtime.environment(workspace_id, env).read()
        for e in outbox.list_endpoints(reader):
            rows = [
                [f"<code>{esc(d['statement_id'])}</code>", esc(d["verb"]), esc(d["status"]), esc(d["attempts"]),
                 esc(d["last_error"] or ""), esc(d["created"]), esc(d["delivered"] or "")]
                for d in outbox.delivery_log(reader, e["id"], RECENT)
            ]
            fields = {"workspace": workspace_id, "env": env, "id": e["id"]}
            parts.append(
                f"<h2>Workspace {workspace_id} {env}: LRS {esc(e['id'])}</h2>"
                f"<p><code>{esc(e['url'])}</code> · {esc(e['auth'])} as {esc(e['username'])} · pending {esc(e['pending'])}"
                f" · delivered {esc(e['delivered'])} · failed {esc(e['failed'])} · "
                + post_button("/admin/lrs/remove", "Remove", who.csrf, fields) + "</p>"
                + table(["Statement", "Verb", "Status", "Attempts", "Last error", "Queued", "Delivered"], rows,
                        f"Last {RECENT} statements")
            )
    body = "".join(parts) or "<p>No LRS endpoints. Add one with <code>appliance lrs add</code> (docs/xapi.md).</p>"
    notice = "LRS endpoint removed." if done == "removed" else ""
    return page("Learning record stores", body, admin=who.name, csrf=who.csrf, current="/admin/lrs", notice=notice)


@post("/lrs/remove", sync_to_thread=True, status_code=200)
def lrs_remove(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    try:
        workspace_id, env, endpoint_id = int(data.get("workspace", "")), data.get("env", ""), int(data.get("id", ""))
    except ValueError:
        raise Invalid("workspace and id must be numbers") from None
    if env not in service.ENVIRONMENTS:
        raise Invalid("env must be test or production")
    auth.acting(request, data, f"lrs:{workspace_id}:{env}:{endpoint_id}")
    try:
        runtime_of(request).environment(workspace_id, env).write(lambda w: outbox.remove_endpoint(w, endpoint_id))
    except NotFound:
        return message_page("Not removed", f"No LRS endpoint {endpoint_id} in workspace {workspace_id} {env}", 404,
                            ("/admin/lrs", "Back"))
    return Redirect("/admin/lrs?done=removed", status_code=303)


LRS_CONSOLE_HANDLERS = [lrs_page, lrs_remove]
