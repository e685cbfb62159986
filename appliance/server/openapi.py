"""Make the generated OpenAPI document say what the server does.

Litestar documents its own error shape (`{status_code, detail, extra}`), no security, drops the
constraints of optional body fields and cannot see the inputs a handler reads itself. The server
answers every 4xx/5xx with the one error body of `appliance.errors` and authenticates every
headless operation with the COASSEMBLE Authorization header, so the document is corrected once,
after generation, in the cached object both `/api/docs/json` and the browsable `/api/docs/` serve:

* `components.securitySchemes.COASSEMBLE` (an API key in the Authorization header), required by
  every headless operation;
* `components.schemas.Error`, the error body, as the content of every error response;
* integer parameters and body numbers bounded as `server.inputs` enforces (64-bit; `page` and
  `length` from 0, as `headless.common.page_window` enforces);
* each body's schema from msgspec, which keeps the constraints (Meta) of its types, plus the
  checks handlers make themselves, loose bodies and query forms (`server.openapi_inputs`);
* the error statuses each operation can answer (the middleware's 401/403/413/429/503/507 on every
  headless route, 404 where there is a path parameter, 400/409 where a body changes data, the AI
  statuses on the generation routes), each with that body.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.openapi.spec import (
    Components,
    OpenAPI,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    RequestBody,
    Schema,
    SecurityScheme,
)

from appliance.errors import error_code, reason_phrase
from appliance.headless.common import MAX_PAGE
from appliance.server import openapi_inputs as inputs
from appliance.server.inputs import INT_MAX, INT_MIN

SCHEME = "COASSEMBLE"
ERROR_REF = "#/components/schemas/Error"
JOB_REF = "#/components/schemas/Job"
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
        description="The one error body; never a key, token or stack trace",
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
    if path.startswith(("/v1/headless/course/scorm/", "/v1/headless/course/cmi5/")):  # unpublished: 409
        codes.update((404, 409))
    if path.endswith(("/course/document", "/course/presentation")):
        codes.add(404)  # the document named in the body
    if (path, method) in inputs.LOOSE_BODIES or (path, method) in inputs.QUERY_FORMS:
        codes.update((404, 409))  # the named course, collection, theme or learner; an unpublished course
    if "/generate/" in path or path.endswith("/generate") or "/translation" in path or "/narrate" in path:
        codes.update(AI)
    return codes


def _struct_classes() -> dict[str, type[msgspec.Struct]]:
    """The appliance's msgspec bodies by name (a name two classes share is left as generated)."""
    found: dict[str, list[type[msgspec.Struct]]] = {}
    stack: list[type[msgspec.Struct]] = [msgspec.Struct]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__module__.startswith("appliance."):
            found.setdefault(cls.__name__, []).append(cls)
    return {name: classes[0] for name, classes in found.items() if len(classes) == 1}


def _bound_numbers(schema: Any) -> None:
    """Every integer and number in a body: 64-bit, as server.inputs refuses anything larger; a
    free-form object or array (`dict[str, Any]`) holds such JSON values only."""
    if isinstance(schema, list):
        for item in schema:
            _bound_numbers(item)
        return
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "object" and "properties" not in schema:
        schema.setdefault("additionalProperties", {"$ref": inputs.JSON_VALUE_REF})
    if schema.get("type") == "array":
        schema.setdefault("items", {"$ref": inputs.JSON_VALUE_REF})
    if schema.get("type") in ("integer", "number"):
        schema["minimum"] = max(schema.get("minimum", INT_MIN), INT_MIN)
        schema["maximum"] = min(schema.get("maximum", INT_MAX), INT_MAX)
        if schema["type"] == "integer":
            schema.setdefault("format", "int64")
    for value in schema.values():
        _bound_numbers(value)


def _with_rule(schema: dict[str, Any], rule: dict[str, Any]) -> None:
    """Add a handler's own check to a property (to its non-null branch when it is optional)."""
    for option in schema.get("anyOf", [schema]):
        if option.get("type") != "null":
            option.update(rule)


def _body_components(schemas: dict[str, Any]) -> None:
    """msgspec's schema of each body replaces Litestar's, which drops the constraints of optional
    fields; then the checks handlers make after decoding (BODY_RULES). Unknown properties are
    ignored by the server, but their numbers are still bounded (JsonValue)."""
    classes = _struct_classes()
    wanted = [classes[name] for name in schemas if name in classes]
    _, generated = msgspec.json.schema_components(wanted, ref_template="#/components/schemas/{name}")
    for name, schema in generated.items():
        if name not in schemas or not isinstance(schema.get("properties"), dict):
            continue
        for (owner, field), rule in inputs.BODY_RULES.items():
            if owner == name and field in schema["properties"]:
                _with_rule(schema["properties"][field], rule)
        schema["additionalProperties"] = {"$ref": inputs.JSON_VALUE_REF}
        if name in inputs.BODY_EXAMPLES:
            schema["examples"] = [inputs.BODY_EXAMPLES[name]]
        _bound_numbers(schema)
        schemas[name] = schema
    schemas["JsonValue"] = inputs.json_value()
    schemas["Job"] = inputs.job()


def _name(parameter: Any) -> str:
    return str(parameter["name"] if isinstance(parameter, dict) else parameter.name)


def _handler_inputs(path: str, method: str, operation: Operation) -> None:
    """Inputs the handler reads or checks itself (server.openapi_inputs)."""
    upload = inputs.MULTIPART_BODIES.get((path, method))
    if upload is not None:
        operation.request_body = RequestBody(
            content={"multipart/form-data": OpenAPIMediaType(schema=upload())},
            required=True,
        )
    loose = inputs.LOOSE_BODIES.get((path, method))
    if loose is not None:
        operation.request_body = RequestBody(
            content={"application/json": OpenAPIMediaType(schema=loose())},
            required=True,
            description="JSON; a form body (`options` as JSON text) or the query string are read alike",
        )
    if (path, method) in inputs.ASYNC_JOBS:
        operation.parameters = [*(operation.parameters or []), dict(inputs.PREFER)]  # type: ignore[list-item]
        operation.responses = {
            **(operation.responses or {}),
            "202": OpenAPIResponse(
                description="The job, for `Prefer: respond-async`",
                content={"application/json": OpenAPIMediaType(schema=Reference(ref=JOB_REF))},
            ),
        }
    reads_job = path == "/v1/headless/jobs/{job_id}" and method == "get"
    if "/narrate" in path or reads_job:
        status = "200" if reads_job else "202"
        operation.responses = {
            **(operation.responses or {}),
            status: OpenAPIResponse(
                description="The job",
                content={"application/json": OpenAPIMediaType(schema=Reference(ref=JOB_REF))},
            ),
        }
    query = inputs.QUERY_FORMS.get((path, method))
    if query is not None:
        kept = [p for p in operation.parameters or [] if getattr(p, "param_in", None) == "path"]
        operation.parameters = [*kept, *query()]
    for parameter in operation.parameters or []:
        rule = inputs.PARAMETER_RULES.get((path, method, _name(parameter)))
        if rule is not None and isinstance(parameter, Parameter):
            parameter.required, parameter.schema = rule[0], dict(rule[1])  # type: ignore[assignment]


def _legacy_get(document: OpenAPI) -> None:
    """`GET course/url` is a route (the deprecated query form of `POST course/url`) kept out of
    Litestar's document; an undocumented method must be a 405, so it is documented here."""
    item = (document.paths or {}).get("/v1/headless/course/url")
    if item is None or item.post is None or item.get is not None:
        return
    item.get = Operation(
        tags=item.post.tags,
        summary="Signed URL (deprecated GET form of POST course/url, query parameters)",
        operation_id="GetCourseUrl",
        deprecated=True,
        responses={"200": OpenAPIResponse(
            description="The signed URL",
            content={"text/plain": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))},
        )},
    )


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
    text/plain (as the cloud's do), and the job event streams text/event-stream."""
    for code, response in responses.items():
        content = getattr(response, "content", None)
        if not code.startswith("2") or not content or "application/json" not in content:
            continue
        schema = content["application/json"].schema
        if path.endswith("/events"):
            response.content = {"text/event-stream": OpenAPIMediaType(schema=inputs.job_event())}  # type: ignore[arg-type]
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
    _body_components(components.schemas)
    _legacy_get(document)
    for path, item in (document.paths or {}).items():
        for method in METHODS:
            operation = getattr(item, method, None)
            if operation is None:
                continue
            if path.startswith("/v1/headless"):
                operation.security = [{SCHEME: []}]
            _handler_inputs(path, method, operation)
            _bound_integers(operation.parameters)
            responses: dict[str, Any] = dict(operation.responses or {})
            for code in list(responses):
                if code.isdigit() and int(code) >= 400:  # Litestar's {status_code, detail, extra}
                    responses[code] = _error_response(int(code))
            codes = statuses(method, path)
            if {_name(p) for p in operation.parameters or []} & LOOKUPS:
                codes.add(404)  # a named course, user or client that does not exist
            for status in sorted(codes):
                responses.setdefault(str(status), _error_response(status))
            _true_media_types(path, responses)
            operation.responses = responses
    return document
