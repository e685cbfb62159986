"""Who is at the console: the session cookie, the CSRF check of every form, the login throttle.

The console never reads an Authorization header, so partner API keys open nothing here; and the
partner API's authentication (server.middleware) only covers the headless prefixes, so a console
cookie opens nothing there.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import deque
from typing import Any

from litestar import Request
from litestar.datastructures import Cookie

from appliance.admin import sessions
from appliance.runtime import Runtime
from appliance.server.context import context_of, runtime_of

PRE_COOKIE = "appliance_admin_pre"  # the login and setup forms' CSRF token (double submit)
LOGIN_WINDOW_SECONDS = 300
LOGIN_ATTEMPTS = 20  # per client address and window, whatever the names tried


class LoginRequired(Exception):
    """No live session: the console answers with the login page."""


class CsrfRefused(Exception):
    """A form without the session's CSRF token: refused, nothing done."""


def secure(request: Request[Any, Any, Any]) -> bool:
    return request.url.scheme == "https"


def session_cookie(request: Request[Any, Any, Any], value: str, *, clear: bool = False) -> Cookie:
    return Cookie(
        key=sessions.COOKIE,
        value=value,
        path="/admin",
        httponly=True,
        secure=secure(request),
        samesite="strict",
        max_age=0 if clear else None,
    )


def pre_cookie(request: Request[Any, Any, Any]) -> tuple[str, Cookie | None]:
    """The visitor's pre-login CSRF token: the cookie's, or a new one to set."""
    existing = request.cookies.get(PRE_COOKIE, "")
    if 20 <= len(existing) <= 100:
        return existing, None
    token = secrets.token_urlsafe(24)
    cookie = Cookie(key=PRE_COOKIE, value=token, path="/admin", httponly=True, secure=secure(request), samesite="strict")
    return token, cookie


def pre_csrf_ok(request: Request[Any, Any, Any], presented: str | None) -> bool:
    expected = request.cookies.get(PRE_COOKIE, "")
    return bool(expected) and bool(presented) and hmac.compare_digest(expected.encode(), (presented or "").encode())


def current(request: Request[Any, Any, Any]) -> sessions.Session:
    """The signed-in administrator; the audit entry of this request names them."""
    runtime = runtime_of(request)
    settings = runtime.settings.admin
    found = sessions.find(
        runtime.control, request.cookies.get(sessions.COOKIE), settings.idle_minutes, settings.session_hours
    )
    if found is None:
        raise LoginRequired
    context_of(request).actor = f"admin:{found.name}"
    return found


def acting(request: Request[Any, Any, Any], form: dict[str, Any], target: str | None = None) -> sessions.Session:
    """`current`, for a form that changes something: its CSRF token must be the session's."""
    session = current(request)
    if not sessions.csrf_ok(session, form.get("csrf")):
        raise CsrfRefused
    if target is not None:
        context_of(request).target = target
    return session


class LoginThrottle:
    """At most LOGIN_ATTEMPTS login posts per client address per window (the account lockout in
    admin.accounts stops guessing one account; this stops spraying many)."""

    def __init__(self) -> None:
        self._seen: dict[str, deque[float]] = {}

    def allow(self, client: str) -> bool:
        now = time.monotonic()
        seen = self._seen.setdefault(client, deque())
        while seen and seen[0] < now - LOGIN_WINDOW_SECONDS:
            seen.popleft()
        if len(seen) >= LOGIN_ATTEMPTS:
            return False
        seen.append(now)
        if len(self._seen) > 10_000:
            self._seen = {k: v for k, v in self._seen.items() if v and v[-1] > now - LOGIN_WINDOW_SECONDS}
        return True


def throttle_of(request: Request[Any, Any, Any]) -> LoginThrottle:
    state = request.app.state
    if not hasattr(state, "admin_throttle"):
        state.admin_throttle = LoginThrottle()
    throttle: LoginThrottle = state.admin_throttle
    return throttle


def runtime(request: Request[Any, Any, Any]) -> Runtime:
    return runtime_of(request)
