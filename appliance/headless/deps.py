"""Dependencies every headless handler shares: the caller and its environment's database."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.di import Provide

from appliance.errors import ApiError, forbidden
from appliance.runtime import Runtime
from appliance.server.context import RequestContext
from appliance.storage.database import Database
from appliance.workspaces import service
from appliance.workspaces.service import Principal


def context_of(request: Request[Any, Any, Any]) -> RequestContext:
    ctx: RequestContext = request.scope["appliance"]  # type: ignore[typeddict-item]
    return ctx


def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    principal = context_of(request).principal
    if principal is None:  # the middleware authenticates every headless path; this is a safety net
        raise ApiError(401, "Invalid Authorization header")
    return principal


def provide_runtime(request: Request[Any, Any, Any]) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def provide_db(request: Request[Any, Any, Any]) -> Database:
    principal = provide_principal(request)
    return provide_runtime(request).environment(principal.workspace_id, principal.environment)


def require_entitlement(request: Request[Any, Any, Any], name: str) -> None:
    principal = provide_principal(request)
    workspace = service.get_workspace(provide_runtime(request).control, principal.workspace_id)
    if not workspace["entitlements"].get(name, False):
        raise forbidden(name)


def set_target(request: Request[Any, Any, Any], target: str) -> None:
    """Name the object a call touched, for the audit log."""
    context_of(request).target = target


DEPENDENCIES = {
    "principal": Provide(provide_principal, sync_to_thread=False),
    "db": Provide(provide_db, sync_to_thread=False),
}
