"""Per-request facts the middleware collects and the handlers read from `scope["appliance"]`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from appliance.workspaces.service import Principal

if TYPE_CHECKING:
    from litestar import Request

    from appliance.runtime import Runtime


@dataclass
class RequestContext:
    """Per-request facts the handlers read from `scope["appliance"]`."""

    request_id: str
    principal: Principal | None = None
    target: str | None = None
    actor: str = "anonymous"
    log_path: str = ""  # the path as logs and the audit record it: tokens redacted, identifiers pseudonymised
    extra: dict[str, Any] = field(default_factory=dict)


def context_of(request: Request[Any, Any, Any]) -> RequestContext:
    """The request's context (every route: headless, embeds, SCORM)."""
    ctx: RequestContext = request.scope["appliance"]  # type: ignore[typeddict-item]
    return ctx


def runtime_of(request: Request[Any, Any, Any]) -> Runtime:
    """The appliance's runtime the app was created with (appliance.server.app)."""
    runtime: Runtime = request.app.state.runtime
    return runtime
