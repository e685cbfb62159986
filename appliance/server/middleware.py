"""The outer ASGI layer every HTTP request passes, matched route or not.

In order: request id, body-size limit, rate limit, API-key authentication for the headless
prefixes, then the Litestar app. The audit entry is committed when the response starts, before
any byte reaches the client; if it cannot be committed the client gets 503 instead (fail-closed),
or 507 when the disk is full. While the data disk is full (storage.diskfull) requests that change
data are refused with 507 before they start; reads go on, audited in the released space reserve.
One JSON access-log line and the metrics are written when the response ends.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from litestar.exceptions import HTTPException

from appliance import logs
from appliance.errors import error_body
from appliance.runtime import Runtime
from appliance.security import apikeys
from appliance.security.audit import AuditEvent, AuditUnavailable
from appliance.security.pseudonym import log_key, pseudonymise_path
from appliance.server import inputs
from appliance.server.context import RequestContext
from appliance.server.failures import record_failure
from appliance.server.metrics import Metrics
from appliance.server.shared import SharedRateLimiter
from appliance.storage import diskfull
from appliance.workspaces.keycache import KeyCache

# Request ids only correlate log lines and audit entries: a seeded PRNG, not os.urandom (a syscall
# per request that also hands the GIL to the writer threads on the event loop's hot path).
_REQUEST_IDS = random.Random(secrets.randbits(64))

# Plain ASGI types: this layer sits outside Litestar and handles any HTTP message.
Message = dict[str, Any]
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
AUDIT_DOWN = "The audit log is unavailable; the request was not carried out."
HEADLESS_PREFIXES = ("/api/v1/headless/", "/v1/headless/")
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]
LOG_PATHS_KEPT = 4096  # distinct paths whose logged form is kept (a bound: paths carry ids)
_SLASHES = re.compile(r"/{2,}")
_TOKENISH = re.compile(r"^[A-Za-z0-9_\-]{20,}\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+$")


def redact_path(path: str) -> str:
    """Paths go to logs and the audit log; token-like segments (embed URLs) do not."""
    parts = path.split("/")
    return "/".join("[redacted]" if len(p) >= 40 or _TOKENISH.match(p) else p for p in parts)[:300]


def is_headless(path: str) -> bool:
    return path.startswith(HEADLESS_PREFIXES) or path in ("/api/v1/headless", "/v1/headless")


class BodyTooLarge(HTTPException):
    """Raised while Litestar reads a body without Content-Length that grows past the limit."""

    status_code = 413


class RateLimiter:
    """A token bucket per caller (API key hash or client address), in this process's memory;
    the workers of `serve --workers N` share one table instead (server.shared)."""

    def __init__(self, per_second: float, burst: int) -> None:
        self.rate = per_second
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, caller: str) -> float:
        """Return 0 if allowed, otherwise the seconds to wait."""
        now = time.monotonic()
        tokens, last = self._buckets.get(caller, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[caller] = (tokens, now)
            return (1.0 - tokens) / self.rate
        self._buckets[caller] = (tokens - 1.0, now)
        if len(self._buckets) > 50_000:
            cutoff = now - 60
            self._buckets = {k: v for k, v in self._buckets.items() if v[1] > cutoff}
        return 0.0


class ApplianceMiddleware:
    def __init__(self, app: ASGIApp, runtime: Runtime, metrics: Metrics, shared: Path | None = None) -> None:
        """`shared`: the directory the workers of `serve --workers N` share the rate limit in."""
        self.app = app
        self.runtime = runtime
        self.metrics = metrics
        limits = runtime.settings.limits
        self.max_body = limits.max_body_bytes
        # document uploads (POST .../documents) have their own limit, [documents] max_bytes
        self.document_body = runtime.settings.documents.max_bytes + 64 * 1024
        self.limiter: RateLimiter | SharedRateLimiter = (
            SharedRateLimiter(shared, runtime.pepper, limits.rate_per_second, limits.rate_burst)
            if shared is not None
            else RateLimiter(limits.rate_per_second, limits.rate_burst)
        )
        self.access_log = runtime.settings.log.access_log
        self.log_key = log_key(runtime.pepper)
        self.log_paths: dict[str, str] = {}  # path -> what logs and the audit log name it
        self.keys = KeyCache(runtime.control, runtime.pepper)  # revocations apply on the next request
        # every method each route answers, for the Allow header of OPTIONS (RFC 9110)
        self.allowed: dict[str, str] = {
            route.path_format: ", ".join(sorted(route.methods))
            for route in getattr(app, "routes", [])
            if getattr(route, "methods", None)
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        ctx = RequestContext(request_id=f"{_REQUEST_IDS.getrandbits(64):016x}")
        scope["appliance"] = ctx
        bound = logs.REQUEST_ID.set(ctx.request_id)
        method: str = scope["method"]
        if "//" in scope["path"]:
            # a partner base URL with a trailing slash gives `/api//v1/...`: route it as meant,
            # rather than miss the headless prefix (no authentication) and answer a misleading 401
            scope["path"] = _SLASHES.sub("/", scope["path"])
            if scope.get("raw_path"):
                scope["raw_path"] = re.sub(rb"/{2,}", b"/", scope["raw_path"])
        path: str = scope["path"]
        log_path = self.log_paths.get(path)
        if log_path is None:
            # a keyed hash and a regex per segment: paid once per distinct path, not per request
            log_path = redact_path(pseudonymise_path(self.log_key, path))
            if len(self.log_paths) >= LOG_PATHS_KEPT:
                self.log_paths.clear()
            self.log_paths[path] = log_path
        ctx.log_path = log_path
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        client = scope.get("client")
        client_addr = client[0] if client else None
        state: dict[str, Any] = {"status": 500, "audit_failed": False, "started": False}
        error_body = bytearray()

        async def send_audited(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = int(message["status"])
                try:
                    await self._record(self._event(ctx, method, path, status, headers, client_addr, started))
                except AuditUnavailable as exc:
                    self.metrics.count("audit_failures")
                    state["audit_failed"] = True
                    if exc.disk_full:  # fail-closed as ever, but say why
                        changed = status < 400 and method not in SAFE_METHODS
                        failure = diskfull.STATUS
                        text = diskfull.UNCONFIRMED if changed else diskfull.MESSAGE
                        extra = {"retry-after": diskfull.RETRY_AFTER}
                    else:
                        failure, text, extra = 503, AUDIT_DOWN, {}
                    state["status"] = failure
                    state["started"] = True
                    await send(_error_start(failure, ctx.request_id, extra))
                    await send(
                        {
                            "type": "http.response.body",
                            "body": _error_bytes(failure, text),
                            "more_body": False,
                        }
                    )
                    return
                state["status"] = status
                state["started"] = True
                if method == "OPTIONS" and scope.get("path_template") in self.allowed:
                    # Litestar's own OPTIONS answer lists the methods of one handler group only
                    allow = (b"allow", self.allowed[scope["path_template"]].encode())
                    message["headers"] = [*(h for h in message.get("headers", []) if h[0].lower() != b"allow"), allow]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", ctx.request_id.encode()),
                    *SECURITY_HEADERS,
                ]
                await send(message)
            elif not state["audit_failed"]:
                if state["status"] >= 400 and len(error_body) < 2048:
                    error_body.extend(message.get("body", b"")[:2048])
                await send(message)

        try:
            refusal = self._precheck(ctx, method, path, headers, client_addr)
            if refusal is None and method not in SAFE_METHODS:
                if not self.runtime.disk.writable():
                    self.metrics.count("disk_full_refusals")
                    refusal = diskfull.STATUS, diskfull.MESSAGE, {"retry-after": diskfull.RETRY_AFTER}
                else:
                    try:
                        await self.runtime.audit.ensure_writable()
                    except AuditUnavailable as exc:
                        refusal = (
                            (diskfull.STATUS, diskfull.MESSAGE, {"retry-after": diskfull.RETRY_AFTER})
                            if exc.disk_full
                            else (503, AUDIT_DOWN, {})
                        )
            if refusal is not None:
                status, message, extra = refusal
                await send_audited(_error_start(status, ctx.request_id, extra))
                await send_audited({"type": "http.response.body", "body": _error_bytes(status, message)})
                return
            limited = self._limited_receive(receive, self._body_limit(method, path))
            if inputs.body_is_json(method, path, headers.get("content-type", "")):
                body, rest = await inputs.read_body(limited)
                try:
                    inputs.check_json(body)
                except inputs.InputRefused as refused:
                    await send_audited(_error_start(refused.status, ctx.request_id, {}))
                    await send_audited({"type": "http.response.body", "body": _error_bytes(refused.status, refused.message)})
                    return
                limited = inputs.replay(body, rest, limited)
            await self.app(scope, limited, send_audited)
        except BodyTooLarge:
            if not state["started"]:
                await send_audited(_error_start(413, ctx.request_id, {}))
                await send_audited(
                    {"type": "http.response.body", "body": _error_bytes(413, self._too_large(self._body_limit(method, path)))}
                )
        finally:
            if ctx.principal is not None and state["status"] >= 400 and not state["audit_failed"]:
                self._remember_failure(ctx, method, path, int(state["status"]), bytes(error_body))
            elapsed = time.perf_counter() - started
            self.metrics.observe(method, int(state["status"]), elapsed)
            if self.access_log:
                logs.event(
                    "request",
                    request_id=ctx.request_id,
                    method=method,
                    path=ctx.log_path,
                    status=state["status"],
                    ms=round(elapsed * 1000, 2),
                    actor=ctx.actor,
                )
            logs.REQUEST_ID.reset(bound)

    async def _record(self, event: AuditEvent) -> None:
        """Commit a request's audit entry. If the disk just filled up, the episode starts (which
        frees the space reserve) and the entry is tried once more before the request fails."""
        try:
            await self.runtime.audit.record(event)
        except AuditUnavailable as exc:
            if not exc.disk_full:
                raise
            self.runtime.disk.report(exc, "audit")
            await self.runtime.audit.record(event)

    def _remember_failure(self, ctx: RequestContext, method: str, path: str, status: int, body: bytes) -> None:
        """Keep the caller's last failed request for `setup/status` (best effort, not awaited)."""
        principal = ctx.principal
        if principal is None:
            return
        try:
            # a 404 names the path it did not find: the stored copy names it as the logs do
            message = str(json.loads(body).get("message", "")).replace(path, ctx.log_path)
        except (ValueError, AttributeError):
            message = ""
        try:
            database = self.runtime.environment(principal.workspace_id, principal.environment)
            database.submit(lambda db: record_failure(db, method, ctx.log_path, status, message))
        except Exception:  # noqa: S110 - diagnostics must never break the request path
            pass

    def _too_large(self, limit: int | None = None) -> str:
        return f"The request body is larger than the limit of {limit or self.max_body} bytes"

    def _body_limit(self, method: str, path: str) -> int:
        if method == "POST" and path.rstrip("/").endswith("/documents"):
            return self.document_body
        return self.max_body

    def _precheck(
        self, ctx: RequestContext, method: str, path: str, headers: dict[str, str], client: str | None
    ) -> tuple[int, str, dict[str, str]] | None:
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return 400, "Invalid Content-Length header", {}
            if int(length) > self._body_limit(method, path):
                return 413, self._too_large(self._body_limit(method, path)), {}
        auth = headers.get("authorization")
        caller = "k:" + hashlib.sha256(auth.encode()).hexdigest()[:16] if auth else f"ip:{client}"
        wait = self.limiter.allow(caller)
        if wait:
            self.metrics.count("rate_limited")
            return 429, "Too many requests; slow down and retry", {"retry-after": str(max(1, round(wait)))}
        if is_headless(path):
            presented = apikeys.parse_authorization(auth)
            principal = self.keys.authenticate(presented) if presented else None
            if principal is None:
                return 401, "Invalid Authorization header", {}
            ctx.principal = principal
            ctx.actor = principal.actor
            if not self.keys.entitlements(principal.workspace_id).get("api", False):
                return 403, "Your plan does not include API access (api entitlement)", {}
        return None

    def _limited_receive(self, receive: Receive, limit: int) -> Receive:
        seen = 0

        async def wrapped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(detail=self._too_large(limit))
            return message

        return wrapped

    @staticmethod
    def _event(
        ctx: RequestContext,
        method: str,
        path: str,
        status: int,
        headers: dict[str, str],
        client: str | None,
        started: float,
    ) -> AuditEvent:
        principal = ctx.principal
        return AuditEvent(
            actor=ctx.actor,
            method=method,
            route=ctx.log_path or redact_path(path),
            status=status,
            request_id=ctx.request_id,
            workspace_id=principal.workspace_id if principal else None,
            environment=principal.environment if principal else None,
            target=ctx.target,
            client=client,
            user_agent=(headers.get("user-agent") or "")[:200] or None,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
        )


def _error_bytes(status: int, message: str) -> bytes:
    return json.dumps(error_body(status, message)).encode()


def _error_start(status: int, request_id: str, extra: dict[str, str]) -> Message:
    headers = [(b"content-type", b"application/json")]
    headers += [(k.encode(), v.encode()) for k, v in extra.items()]
    return {"type": "http.response.start", "status": status, "headers": headers}
