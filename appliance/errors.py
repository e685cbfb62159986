"""Errors: the domain's refusals and the one error body every 4xx/5xx carries:
`{"statusCode": 403, "code": "FORBIDDEN", "error": "Forbidden", "message": "..."}`.

Domain code (courses, learners, documents, ai) raises a `DomainError` subclass and knows nothing of
HTTP; HTTP code (headless, embeds, scorm) may raise `ApiError` directly. `as_api_error` is the one
mapping from a domain error to its status; the app's exception handler (appliance.server.app) and
the few routes that shape their own error answers (the SCORM API, for its CORS headers) use it.
Messages are written for partners; they never echo a key, a token or a stack trace.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from litestar.exceptions import HTTPException

JSON = "application/json"
PHRASES = {413: "Payload Too Large"}  # the name Node servers (and so, likely, the cloud) use


def reason_phrase(status: int) -> str:
    try:
        return PHRASES.get(status) or HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def error_code(status: int) -> str:
    return reason_phrase(status).upper().replace(" ", "_").replace("-", "_").replace("'", "")


def error_body(status: int, message: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "code": error_code(status),
        "error": reason_phrase(status),
        "message": message,
    }


class DomainError(Exception):
    """A request the domain refuses; `message` is what the partner reads."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    """The object does not exist (or does not exist for this caller)."""


class Invalid(DomainError):
    """The input breaks a rule of the domain."""


class Conflict(DomainError):
    """The object's state does not allow the operation (e.g. publishing a deleted course)."""


class TooLarge(DomainError):
    """The input is larger than a configured limit."""


class Unsupported(DomainError):
    """The input's type is not one the appliance reads."""


class Unavailable(DomainError):
    """A part the operation needs cannot run right now; retrying later may work."""


class BadGateway(DomainError):
    """Another server the operation relies on (an operator's image engine) answered with something
    unusable: a refusal, HTML, an oversized or non-image answer."""


class ApiError(HTTPException):
    """Raise from a handler to answer with the D1 error body."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code=status, detail=message, headers=headers)


# the statuses partners see for each domain refusal (the wire contract: do not change one)
STATUS: dict[type[DomainError], int] = {
    NotFound: 404,
    Invalid: 422,
    Conflict: 409,
    TooLarge: 413,
    Unsupported: 415,
    Unavailable: 503,
    BadGateway: 502,
}


def status_of(exc: DomainError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 422


def as_api_error(exc: DomainError | ApiError) -> ApiError:
    """The HTTP answer to a domain refusal (an ApiError passes through)."""
    if isinstance(exc, ApiError):
        return exc
    return ApiError(status_of(exc), exc.message)


def not_found(what: str) -> NotFound:
    return NotFound(f"{what} not found")


def forbidden(entitlement: str) -> ApiError:
    return ApiError(403, f"Your plan does not include this feature ({entitlement} entitlement)")
