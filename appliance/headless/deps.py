"""Dependencies every headless handler shares: the caller and its environment's database.
(The request's context and runtime are appliance.server.context's: embeds and SCORM read them too.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import sqlite_utils
from litestar import Request
from litestar.di import Provide

from appliance.backup import erasure
from appliance.errors import ApiError, forbidden
from appliance.runtime import Runtime
from appliance.server.context import context_of, runtime_of
from appliance.storage.database import Database
from appliance.workspaces import service
from appliance.workspaces.service import Principal


def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    principal = context_of(request).principal
    if principal is None:  # the middleware authenticates every headless path; this is a safety net
        raise ApiError(401, "Invalid Authorization header")
    return principal


def provide_runtime(request: Request[Any, Any, Any]) -> Runtime:
    return runtime_of(request)


def provide_db(request: Request[Any, Any, Any]) -> Database:
    principal = provide_principal(request)
    return provide_runtime(request).environment(principal.workspace_id, principal.environment)


def require_entitlement(request: Request[Any, Any, Any], name: str) -> None:
    principal = provide_principal(request)
    workspace = service.get_workspace(provide_runtime(request).control, principal.workspace_id)
    if not workspace["entitlements"].get(name, False):
        raise forbidden(name)


async def erase_subject(
    request: Request[Any, Any, Any], kind: str, subject_id: str, delete_rows: Callable[[sqlite_utils.Database], Any]
) -> None:
    """Hard-delete a subject: rows, WAL, backups and its file keys (appliance.backup.erasure).

    It takes a second or more (VACUUM, rewriting log segments), so it runs in a worker thread."""
    principal = provide_principal(request)
    runtime = provide_runtime(request)
    await anyio.to_thread.run_sync(
        lambda: erasure.erase(runtime.backups, principal.workspace_id, principal.environment, kind, subject_id, delete_rows)
    )


def set_target(request: Request[Any, Any, Any], target: str) -> None:
    """Name the object a call touched, for the audit log."""
    context_of(request).target = target


__all__ = ["DEPENDENCIES", "context_of", "erase_subject", "provide_db", "provide_principal", "provide_runtime",
           "require_entitlement", "set_target"]

DEPENDENCIES = {
    "principal": Provide(provide_principal, sync_to_thread=False),
    "db": Provide(provide_db, sync_to_thread=False),
}
