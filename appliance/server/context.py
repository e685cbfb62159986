"""Per-request facts the middleware collects and the handlers read from `scope["appliance"]`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from appliance.workspaces.service import Principal


@dataclass
class RequestContext:
    """Per-request facts the handlers read from `scope["appliance"]`."""

    request_id: str
    principal: Principal | None = None
    target: str | None = None
    actor: str = "anonymous"
    log_path: str = ""  # the path as logs and the audit record it: tokens redacted, identifiers pseudonymised
    extra: dict[str, Any] = field(default_factory=dict)
