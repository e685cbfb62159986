"""Small rules every headless route group shares: pagination, ownership scoping, loose bodies."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from litestar import Request

from appliance.errors import ApiError, not_found
from appliance.server.inputs import INT_MAX, OUT_OF_RANGE, in_range

MAX_LENGTH = 100
MAX_PAGE = INT_MAX // MAX_LENGTH  # documented as the maximum of every `page` (server.openapi)


def page_window(page: int, length: int, max_length: int = MAX_LENGTH) -> tuple[int, int]:
    """The cloud's pagination: 0-based pages; `length` defaults to 100 and is capped at 100."""
    if page < 0:
        raise ApiError(422, "page must be 0 or greater")
    if length < 0:
        raise ApiError(422, f"length must be between 0 and {max_length}")
    if page > MAX_PAGE:  # page * length must fit SQLite's 64-bit OFFSET, whatever the length
        raise ApiError(422, f"page must be at most {MAX_PAGE}")
    length = min(length, max_length)
    return length, page * length


def check_owner(
    row: dict[str, Any], what: str, identifier: str | None, client_identifier: str | None
) -> None:
    """When a caller names an owner, an object owned by someone else does not exist for it."""
    if identifier is not None and row.get("identifier") != identifier:
        raise not_found(what)
    if client_identifier is not None and row.get("client_identifier") != client_identifier:
        raise not_found(what)


async def loose_body(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """A body that may be JSON, form-encoded or absent (the cloud documents both for some DELETEs),
    merged over the query string."""
    values: dict[str, Any] = {k: v for k, v in request.query_params.items()}
    raw = await request.body()
    if raw.strip():
        content_type = request.headers.get("content-type", "")
        if "application/x-www-form-urlencoded" in content_type:
            values.update({k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()})
        elif "multipart/form-data" in content_type:
            form = await request.form()
            values.update({k: v for k, v in form.items() if isinstance(v, str)})
        else:
            try:
                parsed = json.loads(raw)
            except ValueError:
                raise ApiError(400, "Malformed JSON body") from None
            if not isinstance(parsed, dict):
                raise ApiError(422, "The body must be a JSON object")
            values.update(parsed)
    return values


def as_int(values: dict[str, Any], name: str, *, required: bool = True) -> int | None:
    value = values.get(name)
    if value is None or value == "":
        if required:
            raise ApiError(422, f"{name} is required")
        return None
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise ApiError(422, f"{name} must be an integer") from None
    if not in_range(number):  # form and query values are strings: server.inputs never saw them
        raise ApiError(422, f"{name} {OUT_OF_RANGE}")
    return number


def as_str(values: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = values.get(name)
    if value is None or value == "":
        if required:
            raise ApiError(422, f"{name} is required")
        return None
    if not isinstance(value, str | int):
        raise ApiError(422, f"{name} must be a string")
    return str(value)


def loads(text: str | None, default: Any) -> Any:
    return json.loads(text) if text else default
