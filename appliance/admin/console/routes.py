"""The console's routes under /admin/, with its own refusals as pages (not the API's JSON bodies)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Request, Response, Router
from litestar.response import Redirect
from litestar.static_files import create_static_files_router

from appliance.admin.console.auth import CsrfRefused, LoginRequired
from appliance.admin.console.entry import ENTRY_HANDLERS
from appliance.admin.console.html import message_page
from appliance.admin.console.lrs import LRS_CONSOLE_HANDLERS
from appliance.admin.console.lti import LTI_CONSOLE_HANDLERS
from appliance.admin.console.operations import OPERATION_HANDLERS
from appliance.admin.console.pages import PAGE_HANDLERS
from appliance.admin.console.services import SERVICE_HANDLERS
from appliance.errors import DomainError, as_api_error
from appliance.workspaces import service

STATIC = Path(__file__).parent / "static"


def _login(request: Request[Any, Any, Any], exc: LoginRequired) -> Response[Any]:
    if request.method == "GET":
        return Redirect("/admin/login", status_code=303)
    return message_page("Signed out", "Your console session has ended (logged out, idle or expired). Log in again.", 401, ("/admin/login", "Log in"))


def _csrf(request: Request[Any, Any, Any], exc: CsrfRefused) -> Response[Any]:
    return message_page("Form refused", "The form carried no valid CSRF token (stale, or sent from another site); nothing was changed.", 403, ("/admin/", "Back to the console"))


def _refused(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A refusal of the service a form called (unknown workspace, bad mode, bad origin)."""
    if isinstance(exc, DomainError):
        status = as_api_error(exc).status_code
    else:
        status = 404 if isinstance(exc, service.NotFound) else 422
    return message_page("Refused", str(exc), status, ("/admin/", "Back to the console"))


ADMIN_ROUTER = Router(
    path="/admin",
    route_handlers=[
        *ENTRY_HANDLERS, *PAGE_HANDLERS, *OPERATION_HANDLERS, *SERVICE_HANDLERS, *LTI_CONSOLE_HANDLERS, *LRS_CONSOLE_HANDLERS,
        create_static_files_router("/static", directories=[STATIC], include_in_schema=False),
    ],
    exception_handlers={
        LoginRequired: _login, CsrfRefused: _csrf, DomainError: _refused, service.NotFound: _refused, ValueError: _refused,
    },
    include_in_schema=False,
)
