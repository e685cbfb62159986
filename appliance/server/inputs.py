"""The one place request input is checked before any handler decodes it.

Handlers decode bodies in several ways (Litestar's msgspec `data`, `json.loads` in
`headless.common.loose_body`, the embed and SCORM routes, the AI and document routes), and ids go
straight into SQLite, whose INTEGER is 64-bit signed. Rather than hardening each of them, every
request passes these rules first:

* a JSON body must parse (400), nest at most MAX_DEPTH levels (400: a 20,000-deep array would
  otherwise raise RecursionError in any recursive decoder) and hold only finite numbers within the
  64-bit range (422: `1e999`, a 40-digit integer);
* an integer path or query parameter of the matched route must fit in 64 bits (422).

`ApplianceMiddleware` applies the body rule (before routing: it covers every route, matched or not);
`IntegerParamsMiddleware` applies the parameter rule after routing, where the route's typed
parameters are known (a numeric learner identifier is a string and stays allowed).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from appliance.errors import ApiError

INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
MAX_DEPTH = 64
OUT_OF_RANGE = "must be an integer from -9223372036854775808 to 9223372036854775807"
NON_JSON_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


class InputRefused(Exception):
    """A request refused before any handler saw it; carries the D1 status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def in_range(value: int) -> bool:
    return INT_MIN <= value <= INT_MAX


def is_raw_upload(method: str, path: str) -> bool:
    """Routes whose body is a file, not JSON: document uploads and builder media."""
    tail = path.rstrip("/")
    return method == "POST" and (tail.endswith("/documents") or tail.endswith("/builder/media"))


def body_is_json(method: str, path: str, content_type: str) -> bool:
    """Every body except forms and raw uploads reaches a JSON decoder somewhere (several handlers
    parse whatever arrives, whatever its Content-Type), so every other body is checked as JSON."""
    if method in ("GET", "HEAD", "OPTIONS"):
        return False
    return not content_type.lower().startswith(NON_JSON_TYPES) and not is_raw_upload(method, path)


def check_json(raw: bytes) -> None:
    """Raise InputRefused unless `raw` (non-empty) is JSON every decoder in the appliance can take."""
    if not raw.strip():
        return
    try:
        value = msgspec.json.decode(raw)
    except msgspec.ValidationError:  # the only one an untyped decode raises: "Number out of range"
        raise InputRefused(422, "A number in the JSON body is out of range (it must be finite and fit in 64 bits)") from None
    except RecursionError:
        raise InputRefused(400, f"The JSON body is nested too deeply (at most {MAX_DEPTH} levels)") from None
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise InputRefused(400, "Malformed JSON body") from None
    _check_value(value)


def _check_value(value: Any) -> None:
    """Depth and numbers, walked with an explicit stack (no recursion, whatever the input)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                raise InputRefused(400, f"The JSON body is nested too deeply (at most {MAX_DEPTH} levels)")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list | int | float))
        elif isinstance(item, bool):
            continue
        elif isinstance(item, int):
            if not in_range(item):
                raise InputRefused(422, f"A number in the JSON body is out of range: integers {OUT_OF_RANGE}")
        elif isinstance(item, float) and (not math.isfinite(item) or not INT_MIN <= item <= INT_MAX):
            # a float this large becomes an out-of-range integer the moment a handler int()s it
            raise InputRefused(422, "A number in the JSON body is out of range (it must be finite and fit in 64 bits)")


Message = dict[str, Any]


async def read_body(receive: Callable[[], Awaitable[Message]]) -> tuple[bytes, list[Message]]:
    """Read the whole request body; returns it and the messages to replay to the app."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), [message]
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), []


def replay(body: bytes, extra: list[Message], receive: Callable[[], Awaitable[Message]]) -> Callable[[], Awaitable[Message]]:
    """A receive callable that hands the app the body already read, then the real channel."""
    pending = [{"type": "http.request", "body": body, "more_body": False}, *extra]

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


# -- integer path and query parameters (after routing) ----------------------------------------------
@lru_cache(maxsize=1024)
def _int_query_names(handler: Any) -> frozenset[str]:
    """The query names a route handler decodes as integers (its signature's int parameters)."""
    names: set[str] = set()
    for field_name, field in handler.parsed_fn_signature.parameters.items():
        annotation = field.annotation
        types = field.inner_types if field.is_optional else ()
        candidates = [annotation, *(t.annotation for t in types)]
        if not any(t is int for t in candidates):
            continue
        definition = field.kwarg_definition
        alias = getattr(definition, "query", None) or getattr(definition, "name", None)
        names.add(alias or field_name)
    return frozenset(names)


def check_params(scope: Scope) -> None:
    for name, value in (scope.get("path_params") or {}).items():
        if isinstance(value, int) and not isinstance(value, bool) and not in_range(value):
            raise ApiError(422, f"Path parameter {name} {OUT_OF_RANGE}")
    handler = scope.get("route_handler")
    if handler is None or not hasattr(handler, "parsed_fn_signature"):
        return
    names = _int_query_names(handler)
    if not names:
        return
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in names and _out_of_range_literal(value):
            raise ApiError(422, f"Query parameter {name} {OUT_OF_RANGE}")


def _out_of_range_literal(value: str) -> bool:
    text = value.strip()
    digits = text[1:] if text[:1] in "+-" else text
    if not (digits.isascii() and digits.isdigit()):
        return False  # not an integer literal: the route's own validation answers 422
    if len(digits) > 25:
        return True
    return not in_range(int(text))


class IntegerParamsMiddleware:
    """Litestar middleware (it runs after routing, so the route's typed parameters are known)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            check_params(scope)
        await self.app(scope, receive, send)
