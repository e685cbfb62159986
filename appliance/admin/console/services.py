"""Webhooks with their delivery log and "send test"; models and the AI queue with cancel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from appliance.admin.console import auth
from appliance.admin.console.html import csrf_field, esc, message_page, page, post_button, table
from appliance.admin.console.pages import notice
from appliance.ai import models
from appliance.ai.jobs import AIService
from appliance.errors import Invalid
from appliance.server.context import runtime_of
from appliance.storage.database import fetch_all, fetch_one
from appliance.webhooks import outbox
from appliance.workspaces import service

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
RECENT = 20  # deliveries shown per endpoint


def _target(data: dict[str, str]) -> tuple[int, str, int]:
    try:
        workspace_id, env, item = int(data.get("workspace", "")), data.get("env", ""), int(data.get("id", ""))
    except ValueError:
        raise Invalid("workspace and id must be numbers") from None
    if env not in service.ENVIRONMENTS:
        raise Invalid("env must be test or production")
    return workspace_id, env, item


@get("/webhooks", sync_to_thread=True)
def webhooks(request: Request[Any, Any, Any], done: str | None = None) -> Response[str]:
    who = auth.current(request)
    runtime = runtime_of(request)
    parts = []
    for workspace_id, env in runtime.environment_ids():
        reader = runtime.environment(workspace_id, env).read()
        for e in fetch_all(reader, "SELECT id, url, events, enabled, created FROM webhook_endpoints ORDER BY id"):
            fields = {"workspace": workspace_id, "env": env, "id": e["id"]}
            deliveries = fetch_all(
                reader,
                "SELECT delivery_id, event, test, status, attempts, last_error, created, delivered FROM webhook_outbox "
                "WHERE endpoint_id = ? ORDER BY id DESC LIMIT ?",
                [e["id"], RECENT],
            )
            rows = [
                [f"<code>{esc(d['delivery_id'])}</code>", esc(d["event"]) + (" (test)" if d["test"] else ""), esc(d["status"]),
                 esc(d["attempts"]), esc(d["last_error"] or ""), esc(d["created"]), esc(d["delivered"] or "")]
                for d in deliveries
            ]
            parts.append(
                f"<h2>Workspace {workspace_id} {env}: endpoint {esc(e['id'])}</h2>"
                f"<p><code>{esc(e['url'])}</code> · events {esc(', '.join(json.loads(e['events'])))} · "
                f"{'enabled' if e['enabled'] else 'disabled'} · "
                + post_button("/admin/webhooks/test", "Send test", who.csrf, fields) + "</p>"
                + table(["Delivery", "Event", "Status", "Attempts", "Last error", "Queued", "Delivered"], rows, f"Last {RECENT} deliveries")
            )
    body = "".join(parts) or "<p>No webhook endpoints. Partners register them through the API (POST /v1/headless/webhooks).</p>"
    return page("Webhooks", body, admin=who.name, csrf=who.csrf, current="/admin/webhooks", notice=notice(done))


@post("/webhooks/test", sync_to_thread=True, status_code=200)
def webhook_test(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    workspace_id, env, endpoint_id = _target(data)
    auth.acting(request, data, f"webhook:{endpoint_id}")
    database = runtime_of(request).environment(workspace_id, env)

    def job(w: Any) -> str | None:
        endpoint = fetch_one(w, "SELECT events FROM webhook_endpoints WHERE id = ?", [endpoint_id])
        if endpoint is None:
            return None
        return outbox.enqueue_test(w, endpoint_id, json.loads(endpoint["events"])[0])

    if database.write(job) is None:
        return message_page("Not sent", f"No webhook endpoint {endpoint_id} in workspace {workspace_id} {env}", 404, ("/admin/webhooks", "Back"))
    outbox.wake()
    return Redirect("/admin/webhooks?done=test-queued", status_code=303)


@get("/ai", sync_to_thread=True)
def ai(request: Request[Any, Any, Any], done: str | None = None, verify: str | None = None) -> Response[str]:
    who = auth.current(request)
    runtime = runtime_of(request)
    engine: AIService | None = getattr(request.app.state, "ai", None)
    models_dir = models.models_dir_for(runtime.data_dir, runtime.settings.ai)
    manifest = models.load_manifest(models_dir)
    default = runtime.settings.ai.model or models.default_model_name(models_dir)
    rows = []
    for name, spec in manifest.items():
        path = spec.path(models_dir)
        state = "installed" if path.exists() else "missing"
        if verify == name and path.exists():
            result = models.verify_file(spec, models_dir)
            state += f' · verify: <strong class="{"ok" if result.ok else "flag"}">{esc(result.reason)}</strong>'
        else:
            state = esc(state)
        check = (
            f'<form method="get" action="/admin/ai" class="inline"><input type="hidden" name="verify" value="{esc(name)}">'
            f'<button type="submit">Verify {esc(name)}</button></form>' if path.exists() else ""
        )
        rows.append([esc(name) + (" (default)" if name == default else ""), esc(spec.license), esc(f"{(spec.size or 0) / 2**20:.0f} MB"), state, check])
    jobs = []
    for workspace_id, env in runtime.environment_ids():
        for j in fetch_all(
            runtime.environment(workspace_id, env).read(),
            "SELECT id, kind, status, progress, message, actor, created FROM jobs WHERE status IN ('queued', 'running') ORDER BY id",
        ):
            fields = {"workspace": workspace_id, "env": env, "id": j["id"]}
            jobs.append([esc(workspace_id), esc(env), esc(j["id"]), esc(j["kind"]), esc(j["status"]), esc(f"{j['progress'] * 100:.0f} %"),
                         esc(j["message"]), esc(j["actor"]), esc(j["created"]),
                         post_button("/admin/ai/cancel", f"Cancel job {j['id']}", who.csrf, fields, danger=True)])
    status = esc(engine.status() if engine is not None else "off")
    add = (
        f'<form method="post" action="/admin/ai/add" class="row">{csrf_field(who.csrf)}'
        '<label>GGUF file on the server (absolute path)<input name="file" required placeholder="/srv/models/model.gguf"></label>'
        '<label>Name (optional)<input name="name"></label><label>Licence<input name="license" value="unknown"></label>'
        '<button type="submit">Add model</button></form>'
    )
    body = (
        f"<p>Engine: <strong>{status}</strong>. Models directory <code>{esc(models_dir)}</code>.</p>"
        + table(["Model", "Licence", "Size", "State", ""], rows, "Models of the manifest")
        + "<h2>Add a model from a file on the server</h2><p>The file is copied into the models directory, "
        "hashed and added to the local manifest, as <code>appliance model add FILE</code> does.</p>" + add
        + "<h2>AI queue</h2>" + table(["Workspace", "Env", "Job", "Kind", "Status", "Progress", "Message", "Started by", "Created", ""], jobs, "Queued and running jobs")
    )
    return page("Models and AI queue", body, admin=who.name, csrf=who.csrf, current="/admin/ai", notice=notice(done))


@post("/ai/cancel", sync_to_thread=True, status_code=200)
def ai_cancel(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    workspace_id, env, job_id = _target(data)
    auth.acting(request, data, f"job:{workspace_id}:{env}:{job_id}")
    engine: AIService | None = getattr(request.app.state, "ai", None)
    if engine is None or not engine.cancel(workspace_id, env, job_id):
        return message_page("Not cancelled", f"Job {job_id} is not running here (finished, or never started)", 409, ("/admin/ai", "Back"))
    return Redirect("/admin/ai?done=cancelled", status_code=303)


@post("/ai/add", sync_to_thread=True, status_code=200)
def ai_add(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    """The console's `appliance model add`: only a GGUF file (by its magic bytes), by absolute path."""
    file = Path(data.get("file", "").strip())
    auth.acting(request, data, f"model-file:{file.name}")
    runtime = runtime_of(request)
    if not file.is_absolute():
        return message_page("Not added", "Give the file's absolute path on the server", 422, ("/admin/ai", "Back"))
    try:
        spec = models.add_model(file, models.models_dir_for(runtime.data_dir, runtime.settings.ai),
                                name=data.get("name", "").strip() or None, license=data.get("license", "").strip() or "unknown")
    except FileNotFoundError:
        return message_page("Not added", f"No file at {file}", 404, ("/admin/ai", "Back"))
    except ValueError as exc:  # not a GGUF file
        return message_page("Not added", str(exc), 422, ("/admin/ai", "Back"))
    auth.acting(request, data, f"model:{spec.name}")  # the audit entry names the model added
    return Redirect("/admin/ai?done=model-added", status_code=303)


SERVICE_HANDLERS = [webhooks, webhook_test, ai, ai_cancel, ai_add]
