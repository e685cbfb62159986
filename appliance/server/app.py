"""Assemble the ASGI application: Litestar routes wrapped by the appliance middleware."""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any

from litestar import Litestar, MediaType, Request, Response, Router, get
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

from appliance import __version__, logs
from appliance.admin.console.routes import ADMIN_ROUTER
from appliance.ai import narration as _narration  # noqa: F401 - registers the narrate_course job kind
from appliance.ai import tasks as _job_kinds  # noqa: F401 - registers the job kinds
from appliance.ai.jobs import AIService
from appliance.documents import tasks as _document_job_kinds  # noqa: F401 - registers the document job kinds
from appliance.embeds.builder import BUILDER_HANDLERS
from appliance.embeds.routes import EMBED_HANDLERS
from appliance.errors import DomainError, as_api_error, error_body
from appliance.headless.collections import CollectionsController
from appliance.headless.courses import CoursesController
from appliance.headless.deps import DEPENDENCIES
from appliance.headless.documents import DocumentsController
from appliance.headless.embeds import EmbedsController, OriginsController
from appliance.headless.generate import GenerateController, JobsController
from appliance.headless.identities import IdentitiesController
from appliance.headless.narration import NarrationController
from appliance.headless.setup import SetupController
from appliance.headless.themes import ThemesController
from appliance.headless.trackings import TrackingsController
from appliance.headless.translations import TranslationsController
from appliance.headless.usage import UsageController
from appliance.headless.webhooks import WebhooksController
from appliance.images import generated as _image_steps  # noqa: F401 - images of generated courses and screens
from appliance.lti.routes import LTI_HANDLERS
from appliance.runtime import METRICS_TOKEN_SETTING, Runtime
from appliance.scorm.api import SCORM_HANDLERS
from appliance.server.inputs import OUT_OF_RANGE, IntegerParamsMiddleware
from appliance.server.metrics import Metrics
from appliance.server.middleware import ApplianceMiddleware, ASGIApp, redact_path
from appliance.server.openapi import make_truthful
from appliance.storage import diskfull
from appliance.storage.crypto import keyed_hash

HEADLESS_HANDLERS = [
    CoursesController,
    IdentitiesController,
    TrackingsController,
    CollectionsController,
    ThemesController,
    UsageController,
    SetupController,
    WebhooksController,
    EmbedsController,
    OriginsController,
    GenerateController,
    JobsController,
    TranslationsController,
    DocumentsController,
    NarrationController,
]
SWAGGER_DIR = Path(__file__).parent / "static" / "swagger-ui"
SWAGGER_URL = "/api/docs/static"


def _error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(
        error_body(status, message), status_code=status, media_type=MediaType.JSON, headers=headers
    )


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    message = exc.detail
    if isinstance(exc, ValidationException):
        malformed = "malformed" in message.lower() or (
            "json" in message.lower() and "decode" in message.lower()
        )
        status = 400 if malformed else 422
        problems = exc.extra if isinstance(exc.extra, list) else []
        details = "; ".join(
            f"{p.get('key', '')}: {p.get('message', '')}".strip(": ") for p in problems if isinstance(p, dict)
        )
        message = (
            "Malformed JSON body" if malformed else f"Validation failed{': ' + details if details else ''}"
        )
    elif isinstance(exc, NotFoundException) and message == "Not Found":
        message = f"Route {request.method} {request.url.path} not found"
    elif status == 405:
        message = f"Method {request.method} is not allowed on this route"
    return _error_response(status, message[:500], exc.headers)


def handle_domain_error(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    """A domain refusal (appliance.errors) answers with its status and the same error body."""
    return handle_http_exception(request, as_api_error(exc))


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if diskfull.is_disk_full(exc):  # SQLITE_FULL or ENOSPC/EDQUOT: a clear 507, not a 500
        runtime: Runtime = request.app.state.runtime
        runtime.disk.report(exc, "request")
        return _error_response(diskfull.STATUS, diskfull.MESSAGE, {"retry-after": diskfull.RETRY_AFTER})
    ctx = request.scope.get("appliance")
    request_id = getattr(ctx, "request_id", None)
    path = getattr(ctx, "log_path", "") or redact_path(request.url.path)
    if isinstance(exc, OverflowError):
        # the last line of defence where numbers reach SQLite (64-bit INTEGER) or C code: an input
        # number the decoding rules (server.inputs) did not see, e.g. a numeric string int()ed
        logs.event("number out of range", level=30, request_id=request_id, path=path)
        return _error_response(422, f"A number in the request is out of range: integers {OUT_OF_RANGE}")
    logs.event(
        "unhandled error", level=40, request_id=request_id, error=type(exc).__name__, path=path
    )
    return _error_response(500, "Internal error; the request id in X-Request-Id identifies it in the logs")


def _bearer(request: Request[Any, Any, Any]) -> str:
    value = request.headers.get("authorization", "")
    return value[7:] if value.startswith("Bearer ") else ""


def _metrics_token_ok(request: Request[Any, Any, Any]) -> bool:
    runtime: Runtime = request.app.state.runtime
    token = _bearer(request)
    if not token:
        return False
    row = (
        runtime.control.read()
        .execute("SELECT v FROM settings WHERE k = ?", [METRICS_TOKEN_SETTING])
        .fetchone()
    )
    return row is not None and hmac.compare_digest(row[0], keyed_hash(runtime.pepper, token))


@get("/health", sync_to_thread=False, include_in_schema=False)
def health(request: Request[Any, Any, Any]) -> Response[Any]:
    """Anonymous callers learn up or down; the metrics token also shows the checks."""
    runtime: Runtime = request.app.state.runtime
    checks: dict[str, str] = {}
    for name, database in (("control", runtime.control), ("audit", runtime.audit.database)):
        try:
            database.read().execute("SELECT 1").fetchone()
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = type(exc).__name__
    up = all(v == "ok" for v in checks.values())
    # reads are served while the disk is full, so the appliance stays "ok"; token holders see it
    checks["disk"] = "ok" if runtime.disk.writable() else "full"
    ai: AIService | None = getattr(request.app.state, "ai", None)
    ai_status = str(ai.status()) if ai is not None else "off"
    checks["ai"] = ai_status  # "unavailable" (no model) leaves the appliance up: only AI routes answer 503
    loading = ai_status == "loading"
    body: dict[str, Any] = {"status": "loading" if loading and up else "ok" if up else "unavailable"}
    if _metrics_token_ok(request):
        body.update(version=__version__, checks=checks)
    return Response(body, status_code=200 if up and not loading else 503)


@get("/metrics", sync_to_thread=False, include_in_schema=False)
def metrics(request: Request[Any, Any, Any]) -> Response[Any]:
    if not _metrics_token_ok(request):
        return _error_response(
            401, "The metrics endpoint needs its bearer token", {"www-authenticate": "Bearer"}
        )
    registry: Metrics = request.app.state.metrics
    runtime: Runtime = request.app.state.runtime
    disk = f"# TYPE appliance_disk_full gauge\nappliance_disk_full {0 if runtime.disk.writable() else 1}\n"
    return Response(registry.render() + disk, media_type="text/plain; version=0.0.4")


@get("/api/docs/json", sync_to_thread=False, include_in_schema=False)
def openapi_json(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The cloud publishes its OpenAPI document at this path; so do we."""
    schema: dict[str, Any] = request.app.openapi_schema.to_schema()
    return schema


def route_handlers() -> list[Any]:
    """Every route the appliance serves (tests walk this table to probe each route)."""
    routers = [
        Router(path="/v1/headless", route_handlers=HEADLESS_HANDLERS, dependencies=DEPENDENCIES),
        Router(
            path="/api/v1/headless",
            route_handlers=HEADLESS_HANDLERS,
            dependencies=DEPENDENCIES,
            include_in_schema=False,
        ),
    ]
    return [
        health,
        metrics,
        openapi_json,
        create_static_files_router(SWAGGER_URL, directories=[SWAGGER_DIR], include_in_schema=False),
        *routers,
        *EMBED_HANDLERS,
        *SCORM_HANDLERS,
        *BUILDER_HANDLERS,
        *LTI_HANDLERS,
        ADMIN_ROUTER,
    ]


def create_litestar(runtime: Runtime, metrics_registry: Metrics, ai: AIService | None = None) -> Litestar:
    app = Litestar(
        route_handlers=route_handlers(),
        exception_handlers={
            HTTPException: handle_http_exception,
            DomainError: handle_domain_error,
            Exception: handle_unexpected,
        },
        middleware=[IntegerParamsMiddleware],
        openapi_config=OpenAPIConfig(
            title="Coassemble appliance headless API",
            version=__version__,
            path="/api/docs",
            # the UI's scripts are served by the appliance itself: no CDN on an air-gapped network
            render_plugins=[
                SwaggerRenderPlugin(
                    path="/",
                    js_url=f"{SWAGGER_URL}/swagger-ui-bundle.js",
                    css_url=f"{SWAGGER_URL}/swagger-ui.css",
                    standalone_preset_js_url=f"{SWAGGER_URL}/swagger-ui-standalone-preset.js",
                    favicon="<link rel='icon' href='data:,'>",
                )
            ],
        ),
        request_max_body_size=runtime.settings.limits.max_body_bytes,
        debug=False,
        logging_config=None,
    )
    app.state.runtime = runtime
    app.state.metrics = metrics_registry
    app.state.ai = ai
    make_truthful(app.openapi_schema)  # the cached document both docs routes serve (server.openapi)
    return app


def create_app(runtime: Runtime, ai: AIService | None = None, worker: tuple[Path, int] | None = None) -> ASGIApp:
    """`worker`: as one of `serve --workers N`, the directory the workers share their rate limit
    and metrics in (server.shared) and this worker's index."""
    registry = Metrics(*worker) if worker is not None else Metrics()
    litestar_app: ASGIApp = create_litestar(runtime, registry, ai)  # type: ignore[assignment]
    return ApplianceMiddleware(litestar_app, runtime, registry, worker[0] if worker is not None else None)
