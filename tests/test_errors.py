"""Domain errors map to the same status and error body as before, in one place (appliance.errors),
and the app's exception handler uses it."""

from __future__ import annotations

import pytest

from appliance.errors import (
    STATUS,
    ApiError,
    Conflict,
    DomainError,
    Invalid,
    NotFound,
    TooLarge,
    Unavailable,
    Unsupported,
    as_api_error,
    error_body,
    not_found,
)
from tests.helpers import Install, Server


@pytest.mark.parametrize(
    ("error", "status"),
    [(NotFound, 404), (Invalid, 422), (Conflict, 409), (TooLarge, 413), (Unsupported, 415), (Unavailable, 503)],
)
def test_each_domain_error_has_its_status(error: type[DomainError], status: int) -> None:
    answer = as_api_error(error("the message"))
    assert (answer.status_code, answer.detail) == (status, "the message")
    assert error_body(status, "the message")["code"] == {
        404: "NOT_FOUND", 422: "UNPROCESSABLE_ENTITY", 409: "CONFLICT", 413: "PAYLOAD_TOO_LARGE",
        415: "UNSUPPORTED_MEDIA_TYPE", 503: "SERVICE_UNAVAILABLE",
    }[status]


def test_every_domain_error_is_mapped_and_http_errors_pass_through() -> None:
    assert set(STATUS) == {c for c in DomainError.__subclasses__()}
    http = ApiError(401, "no")
    assert as_api_error(http) is http
    assert as_api_error(not_found("Course")).detail == "Course not found"


def test_the_app_answers_a_domain_error_with_the_error_body(server: Server, install: Install) -> None:
    """`GET /user/{id}` of a user that does not exist: learners raise NotFound, the app maps it."""
    response = server.client(install.test_key).get("/v1/headless/user/nobody-here")
    assert response.status_code == 404
    assert response.json() == {
        "statusCode": 404, "code": "NOT_FOUND", "error": "Not Found", "message": "User not found",
    }
