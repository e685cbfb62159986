"""Make the generated OpenAPI document say what the server does (decisions D11, issue 11).

Litestar documents its own error shape (`{status_code, detail, extra}`) and no security. The server
answers every 4xx/5xx with the D1 body and authenticates every headless operation with the
COASSEMBLE Authorization header, so the document is corrected once, after generation, in the
cached object both `/api/docs/json` and the browsable `/api/docs/` serve:

* `components.securitySchemes.COASSEMBLE` (an API key in the Authorization header), required by
  every headless operation;
* `components.schemas.Error`, the D1 body, as the content of every error response;
* integer parameters bounded as `server.inputs` enforces (64-bit; `page` and `length` from 0,
  as `headless.common.page_window` enforces);
* the error statuses each operation can answer (the middleware's 401/403/413/429/503/507 on every
  headless route, 404 where there is a path parameter, 400/409 where a body changes data, the AI
  statuses on the generation routes), each with that body.

Constraints of individual parameters and bodies come from the handlers' own types (msgspec Meta).
"""

from __future__ import annotations

from typing import Any

from litestar.openapi.spec import (
    Components,
    OpenAPI,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Reference,
    Schema,
    SecurityScheme,
)

from appliance.errors import error_code, reason_phrase
from appliance.headless.common import MAX_PAGE
from appliance.server.inputs import INT_MAX, INT_MIN

SCHEME = "COASSEMBLE"
ERROR_REF = "#/components/schemas/Error"
METHODS = ("get", "put", "post", "delete", "patch")
EVERY = (401, 403, 422, 429, 500, 503)
WRITES = (400, 409, 413, 507)
AI = (502, 503, 504)
LOOKUPS = {"id", "identifier", "clientIdentifier"}
DESCRIPTION = (
    "Every operation answers under both `/v1/headless/...` (listed here) and `/api/v1/headless/...` "
    "(the same operations with the `/api` prefix partners' base URLs often carry). Every 4xx/5xx "
    "carries the `Error` body `{statusCode, code, error, message}`."
)


def error_schema() -> Schema:
    return Schema(
        type=OpenAPIType.OBJECT,
        required=["statusCode", "code", "error", "message"],
        properties={
            "statusCode": Schema(type=OpenAPIType.INTEGER, minimum=400, maximum=599),
            "code": Schema(type=OpenAPIType.STRING, description="The status phrase in capitals, e.g. NOT_FOUND"),
            "error": Schema(type=OpenAPIType.STRING, description="The status phrase, e.g. Not Found"),
            "message": Schema(type=OpenAPIType.STRING, description="What went wrong, for the partner's developer"),
        },
        additional_properties=False,
        description="The one error body (decisions D1); never a key, token or stack trace",
        examples=[{"statusCode": 404, "code": error_code(404), "error": reason_phrase(404), "message": "Course not found"}],
    )


def _error_response(status: int) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=reason_phrase(status),
        content={"application/json": OpenAPIMediaType(schema=Reference(ref=ERROR_REF))},
    )


def statuses(method: str, path: str) -> set[int]:
    codes = set(EVERY)
    if "{" in path:
        codes.add(404)
    if method != "get":
        codes.update(WRITES)
    if method == "post" and path.endswith("/documents"):
        codes.add(415)  # not multipart, or a file type the reader refuses
    if path.startswith("/v1/headless/course/scorm/"):
        codes.update((404, 409))
    if "/generate/" in path or path.endswith("/generate") or "/translation" in path or "/narrate" in path:
        codes.update(AI)
    return codes


def _integer_schemas(schema: Any) -> list[Schema]:
    if not isinstance(schema, Schema):
        return []
    if schema.type == OpenAPIType.INTEGER:
        return [schema]
    return [s for option in (schema.one_of or []) for s in _integer_schemas(option)]


def _bound_integers(parameters: Any) -> None:
    for parameter in parameters or []:
        for schema in _integer_schemas(getattr(parameter, "schema", None)):
            schema.format = schema.format or "int64"  # type: ignore[assignment]
            lowest = 0 if parameter.name in ("page", "length") else INT_MIN
            schema.minimum = lowest if schema.minimum is None else max(schema.minimum, lowest)
            # page * length must fit SQLite's OFFSET: page_window refuses pages above MAX_PAGE
            highest = MAX_PAGE if parameter.name == "page" else INT_MAX
            schema.maximum = highest if schema.maximum is None else min(schema.maximum, highest)


def _true_media_types(path: str, responses: dict[str, Any]) -> None:
    """Litestar documents a `Response[str]` as a JSON string; the signed-URL routes answer
    text/plain (decisions D1), and the job event streams text/event-stream."""
    for code, response in responses.items():
        content = getattr(response, "content", None)
        if not code.startswith("2") or not content or "application/json" not in content:
            continue
        schema = content["application/json"].schema
        if path.endswith("/events"):
            response.content = {"text/event-stream": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))}
        elif isinstance(schema, Schema) and schema.type == OpenAPIType.STRING:
            response.content = {"text/plain": OpenAPIMediaType(schema=schema)}


def make_truthful(document: OpenAPI) -> OpenAPI:
    """Correct the generated document in place (idempotent) and return it."""
    document.info.description = DESCRIPTION
    components = document.components if isinstance(document.components, Components) else Components()
    document.components = components
    components.security_schemes = {
        **(components.security_schemes or {}),
        SCHEME: SecurityScheme(
            type="apiKey",
            name="Authorization",
            security_scheme_in="header",
            description="`COASSEMBLE:<workspaceId>:<key>` (key: 64 lowercase hex characters), or the legacy "
            "`COASSEMBLE-V1-SHA256 UserId=<workspaceId>, UserToken=<key>`. Anything else is 401.",
        ),
    }
    components.schemas = {**(components.schemas or {}), "Error": error_schema()}
    for path, item in (document.paths or {}).items():
        for method in METHODS:
            operation = getattr(item, method, None)
            if operation is None:
                continue
            if path.startswith("/v1/headless"):
                operation.security = [{SCHEME: []}]
            _bound_integers(operation.parameters)
            responses: dict[str, Any] = dict(operation.responses or {})
            for code in list(responses):
                if code.isdigit() and int(code) >= 400:  # Litestar's {status_code, detail, extra}
                    responses[code] = _error_response(int(code))
            codes = statuses(method, path)
            if {p.name for p in operation.parameters or []} & LOOKUPS:
                codes.add(404)  # a named course, user or client that does not exist
            for status in sorted(codes):
                responses.setdefault(str(status), _error_response(status))
            _true_media_types(path, responses)
            operation.responses = responses
    return document
