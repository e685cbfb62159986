"""The one error body every 4xx/5xx carries (decisions D1):
`{"statusCode": 403, "code": "FORBIDDEN", "error": "Forbidden", "message": "..."}`.

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


class ApiError(HTTPException):
    """Raise from a handler to answer with the D1 error body."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code=status, detail=message, headers=headers)


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what} not found")


def forbidden(entitlement: str) -> ApiError:
    return ApiError(403, f"Your plan does not include this feature ({entitlement} entitlement)")
