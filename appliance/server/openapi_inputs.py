"""What the handlers accept, written as JSON Schema for the OpenAPI document (server.openapi).

Three kinds of input are not described by the handlers' signatures, so Litestar cannot document
them, and are written here from the same constants the handlers check against:

* checks a handler makes after msgspec decoded the body (an enum, a range, a non-blank prompt):
  `BODY_RULES`, keyed by the body's component schema and property;
* the loose bodies of the embed, origin and deletion routes, read by `headless.common.loose_body`
  (JSON, a form or the query string alike): `LOOSE_BODIES`, with their query forms;
* query parameters a handler declares optional but requires, or checks itself: `PARAMETER_RULES`.

The fuzzing test (tests/server/test_schemathesis.py) sends what these schemas allow and what they
refuse, and fails when the server disagrees, so a rule changed in a handler and not here is caught.
"""

from __future__ import annotations

from typing import Any

from appliance.ai.generation import GENERATED_TYPES, MAX_SCREENS, REFINE_OPERATIONS
from appliance.courses.languages import ISO_639_1
from appliance.headless.embeds import BOOLEAN_OPTIONS, COLOR, LANGUAGE
from appliance.headless.usage import METRICS
from appliance.learners.identities import USER_ACTIONS
from appliance.scorm.manifest import VERSIONS
from appliance.scorm.package import KINDS
from appliance.server.inputs import INT_MAX, INT_MIN
from appliance.webhooks.outbox import EVENTS

JSON_VALUE_REF = "#/components/schemas/JsonValue"
INT64: dict[str, Any] = {"type": "integer", "format": "int64", "minimum": INT_MIN, "maximum": INT_MAX}
# loose bodies read numbers from JSON and from forms (text): an id may be a number or its digits,
# and 0 means "not given" on the routes that fall back to the deprecated `id`
LOOSE_ID: dict[str, Any] = {
    "anyOf": [
        {"type": "integer", "format": "int64", "minimum": 1, "maximum": INT_MAX},
        {"type": "string", "pattern": "^[1-9][0-9]{0,17}$"},
        {"type": "null"},
    ]
}


def json_value() -> dict[str, Any]:
    """Any JSON value the input rules of server.inputs let through: numbers finite and within
    64 bits (an unknown property is ignored, but a number out of range anywhere is a 422)."""
    return {
        "anyOf": [
            {"type": ["string", "boolean", "null"]},
            {"type": "number", "minimum": INT_MIN, "maximum": INT_MAX},
            {"type": "array", "items": {"$ref": JSON_VALUE_REF}},
            {"type": "object", "additionalProperties": {"$ref": JSON_VALUE_REF}},
        ],
        "description": "Any JSON value whose numbers are finite and fit in 64 bits",
    }


def _loose_text(max_length: int, *, required: bool = False) -> dict[str, Any]:
    """`headless.common.as_str`: text; empty means not given. (An integer is also taken, as its
    digits, which JSON Schema cannot tell from a number such as 5.0, refused.)"""
    if required:
        return {"type": "string", "minLength": 1, "maxLength": max_length}
    return {"anyOf": [{"type": "string", "maxLength": max_length}, {"type": "null"}]}


def language_pattern() -> str:
    """`courses.languages.known_language` as a pattern: an ISO 639-1 language, then subtags."""
    codes = "|".join(f"[{c[0]}{c[0].upper()}][{c[1]}{c[1].upper()}]" for c in sorted(ISO_639_1))
    return f"^(?:{codes})(?:-[A-Za-z0-9]{{2,8}})*$"


def embed_options() -> dict[str, Any]:
    """`headless.embeds.parse_options`: known options are typed, unknown ones kept."""
    properties: dict[str, Any] = {name: {"type": "boolean"} for name in BOOLEAN_OPTIONS}
    properties.update(
        back={"enum": ["event", "hidden"]},
        color={"type": "string", "pattern": COLOR.pattern},
        language={"type": "string", "pattern": LANGUAGE.pattern},
        flow={"type": "string", "maxLength": 200},
    )
    return {
        "anyOf": [
            {
                "type": "object",
                "properties": properties,
                "additionalProperties": {"$ref": JSON_VALUE_REF},
                "description": "At most 4096 bytes of JSON; a form body may send it as JSON text",
            },
            {"type": "null"},
            {"type": "string", "maxLength": 0},
        ]
    }


def _object(properties: dict[str, Any], *, required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": {"$ref": JSON_VALUE_REF},
        **extra,
    }
    if required:
        schema["required"] = required
    return schema


def _learner() -> dict[str, Any]:
    return {
        "identifier": _loose_text(255),
        "clientIdentifier": _loose_text(255),
        "name": _loose_text(200),
        "options": embed_options(),
    }


def _one_of_ids(*names: str) -> list[dict[str, Any]]:
    """At least one of the named ids (the current name or the deprecated `id`) is given."""
    return [{"required": [name], "properties": {name: LOOSE_ID["anyOf"][0]}} for name in names]


def course_mint() -> dict[str, Any]:
    """`headless.embeds.mint_course`: a course to view, or to edit (no course: a new draft)."""
    return _object(
        {
            "action": {"enum": ["view", "edit"], "default": "view"},
            "courseId": LOOSE_ID,
            "id": {**LOOSE_ID, "deprecated": True},
            "themeId": LOOSE_ID,
            "avatar": _loose_text(2000),
            **_learner(),
        },
        anyOf=[*_one_of_ids("courseId", "id"), {"required": ["action"], "properties": {"action": {"const": "edit"}}}],
        description="`courseId` is required unless `action` is `edit` (which then creates a draft course)",
    )


def collection_mint() -> dict[str, Any]:
    return _object(
        {
            "action": {"enum": ["view", "edit"], "default": "view"},
            "collectionId": LOOSE_ID,
            "id": {**LOOSE_ID, "deprecated": True},
            "themeId": LOOSE_ID,
            **_learner(),
        },
        anyOf=_one_of_ids("collectionId", "id"),
    )


def analytics_mint(what: str) -> dict[str, Any]:
    if what == "user":
        return _object({**_learner(), "identifier": _loose_text(255, required=True)}, required=["identifier"])
    name = f"{what}Id"
    return _object(
        {name: LOOSE_ID, "id": {**LOOSE_ID, "deprecated": True}, **_learner()}, anyOf=_one_of_ids(name, "id")
    )


def origins_body() -> dict[str, Any]:
    port = "(?::(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"
    origin = {"type": "string", "pattern": f"^https?://[A-Za-z0-9][A-Za-z0-9.-]{{0,252}}{port}/?$"}
    return _object(
        {"origins": {"type": "array", "items": origin, "description": "At most 100 distinct origins"}},
        required=["origins"],
    )


# (path, method) -> the loose body; each may also come as a form or in the query string
LOOSE_BODIES: dict[tuple[str, str], Any] = {
    ("/v1/headless/embed/course", "post"): course_mint,
    ("/v1/headless/course/url", "post"): course_mint,
    ("/v1/headless/embed/collection", "post"): collection_mint,
    ("/v1/headless/embed/analytics/course", "post"): lambda: analytics_mint("course"),
    ("/v1/headless/embed/analytics/collection", "post"): lambda: analytics_mint("collection"),
    ("/v1/headless/embed/analytics/user", "post"): lambda: analytics_mint("user"),
    ("/v1/headless/embed/origins", "put"): origins_body,
}


def documents_upload() -> dict[str, Any]:
    """`POST documents`: multipart, the file in `file` (its type decides the reader: 415)."""
    return {
        "type": "object",
        "properties": {
            "file": {"type": "string", "format": "binary", "description": "PDF, DOCX, PPTX, TXT or Markdown"},
            "identifier": {"type": "string", "maxLength": 200, "description": "The owner"},
        },
        "required": ["file"],
    }


MULTIPART_BODIES: dict[tuple[str, str], Any] = {("/v1/headless/documents", "post"): documents_upload}


def _query(name: str, schema: dict[str, Any], required: bool = False, description: str | None = None) -> dict[str, Any]:
    parameter = {"name": name, "in": "query", "required": required, "schema": schema}
    if description:
        parameter["description"] = description
    return parameter


DIGITS = {"type": "string", "pattern": "^[1-9][0-9]{0,17}$"}
BODY_TOO = "; may also be sent in a JSON or form body"
# (path, method) -> query parameters of routes that read them (or a body) themselves
QUERY_FORMS: dict[tuple[str, str], Any] = {
    ("/v1/headless/tracking", "delete"): lambda: [
        _query("id", INT64, required=True, description="The course" + BODY_TOO),
        _query("identifier", {"type": "string", "minLength": 1}, required=True, description="The learner" + BODY_TOO),
    ],
    ("/v1/headless/user/{identifier}", "delete"): lambda: [
        _query("action", {"enum": [*USER_ACTIONS, ""], "default": "ignore"},
               description="What happens to the user's courses" + BODY_TOO),
        _query("reallocateTo", {"type": "string"},
               description="The user who receives the courses; required when action is reallocate" + BODY_TOO),
    ],
    ("/v1/headless/course/url", "get"): lambda: [
        _query("courseId", DIGITS, required=True),
        _query("action", {"enum": ["view", "edit"], "default": "view"}),
        _query("identifier", {"type": "string", "maxLength": 255}),
        _query("clientIdentifier", {"type": "string", "maxLength": 255}),
        _query("name", {"type": "string", "maxLength": 200}),
        _query("themeId", DIGITS),
    ],
    ("/v1/headless/course/view", "get"): lambda: legacy_query("view"),
    ("/v1/headless/course/edit", "get"): lambda: legacy_query("edit"),
}


def legacy_query(action: str) -> list[dict[str, Any]]:
    """`GET course/view|edit?id=` and `GET course/url` (`headless.embeds._legacy_query`)."""
    text = {"type": "string", "maxLength": 255}
    return [
        _query("id", {"type": "string", "pattern": "^[1-9][0-9]{0,17}$"}, required=action == "view",
               description="The course (edit without one creates a draft course)"),
        _query("identifier", text),
        _query("clientIdentifier", text),
        _query("name", {"type": "string", "maxLength": 200}),
        _query("themeId", {"type": "string", "pattern": "^[1-9][0-9]{0,17}$"}),
        _query("flow", {"type": "string", "maxLength": 200}),
        _query("colorPrimary", {"type": "string", "pattern": COLOR.pattern}),
        _query("language", {"type": "string", "pattern": LANGUAGE.pattern}),
        _query("translations", {"type": "string"}, description="true or 1, false or 0; any other value is ignored"),
    ]


# the routes that wait for a job, or answer 202 with it for `Prefer: respond-async` (headless.generate)
ASYNC_JOBS = {
    ("/v1/headless/generate/course", "post"),
    ("/v1/headless/course/generate", "post"),
    ("/v1/headless/generate/course/{course_id}/screen", "post"),
    ("/v1/headless/generate/course/{course_id}/quiz", "post"),
    ("/v1/headless/generate/course/document", "post"),
    ("/v1/headless/generate/course/presentation", "post"),
    ("/v1/headless/translation/translate/{course_id}", "post"),
    ("/v1/headless/translation/sync/{course_id}/{language}", "post"),
}
PREFER = {
    "name": "Prefer",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "enum": ["respond-async"]},
    "description": "Answer 202 with the job at once instead of waiting for it (follow it at /jobs/{id})",
}


def job() -> dict[str, Any]:
    """`ai.jobs.job_to_wire`."""
    text = {"type": ["string", "null"]}
    return {
        "type": "object",
        "properties": {
            "id": INT64,
            "kind": {"type": "string"},
            "status": {"enum": ["queued", "running", "succeeded", "failed", "cancelled"]},
            "progress": {"type": "number"},
            "message": text,
            "result": {"anyOf": [{"type": "object"}, {"type": "null"}]},
            "error": text,
            "created": {"type": "string"},
            "updated": {"type": "string"},
            "finished": text,
        },
        "required": ["id", "kind", "status"],
    }


def job_event() -> dict[str, Any]:
    """One server-sent event of `GET jobs/{id}/events`: JSON `{type, job}` in `data`."""
    return {
        "type": "object",
        "properties": {
            "data": {"type": "string", "contentMediaType": "application/json"},
            "event": {"type": "string"},
            "id": {"type": "string"},
            "retry": {"type": "integer"},
        },
        "required": ["data"],
    }


ISO_DATE = {"type": "string", "format": "date-time", "description": "ISO 8601, e.g. 2025-01-31T00:00:00Z"}
# (path, method, name) -> (required, schema): checks the handler makes itself
PARAMETER_RULES: dict[tuple[str, str, str], tuple[bool, dict[str, Any]]] = {
    ("/v1/headless/trackings", "get", "id"): (True, INT64),
    ("/v1/headless/screen/trackings", "get", "id"): (True, INT64),
    ("/v1/headless/collection/trackings", "get", "id"): (True, INT64),
    ("/v1/headless/user/trackings", "get", "identifier"): (True, {"type": "string", "minLength": 1}),
    ("/v1/headless/trackings", "get", "start"): (False, ISO_DATE),
    ("/v1/headless/trackings", "get", "end"): (False, ISO_DATE),
    # an empty start or end means the current month
    ("/v1/headless/usage/clients", "get", "start"): (False, {"anyOf": [ISO_DATE, {"const": ""}]}),
    ("/v1/headless/usage/clients", "get", "end"): (False, {"anyOf": [ISO_DATE, {"const": ""}]}),
    ("/v1/headless/course/scorm/{course_id}", "get", "type"): (False, {"enum": list(KINDS), "default": "dynamic"}),
    ("/v1/headless/course/scorm/{course_id}", "get", "version"): (False, {"enum": list(VERSIONS), "default": "2004"}),
    ("/v1/headless/translation/sync/{course_id}/{language}", "post", "language"): (
        True, {"type": "string", "pattern": language_pattern()}
    ),
}

NON_BLANK = {"pattern": r"\S"}
# (component schema, property) -> constraints a handler checks after decoding; applied to the
# non-null branch of an optional property
BODY_RULES: dict[tuple[str, str], dict[str, Any]] = {
    ("CourseInput", "prompt"): NON_BLANK,
    ("CourseInput", "screenCount"): {"minimum": 1, "maximum": MAX_SCREENS},
    ("ScreenInput", "type"): {"enum": list(GENERATED_TYPES)},
    ("RefineInput", "operation"): {"enum": list(REFINE_OPERATIONS)},
    ("TranslateInput", "language"): {"pattern": language_pattern()},
    ("AllowanceInput", "metric"): {"enum": list(METRICS)},
    ("WebhookInput", "events"): {"items": {"enum": list(EVENTS)}},
    ("TestDeliveryInput", "event"): {"enum": list(EVENTS)},
}
# a documented example of each AI body: what a partner would send (the fuzzing test's first case)
BODY_EXAMPLES: dict[str, dict[str, Any]] = {
    "CourseInput": {"prompt": "Ladder safety", "screenCount": 1, "quiz": False},
    "ScreenInput": {"type": "text", "title": "Check the ladder"},
    "QuizInput": {"questionCount": 1},
    "RefineInput": {"text": "Check a ladder before you climb it.", "operation": "shorten"},
    "TranslateInput": {"language": "fr"},
    "DocumentCourseInput": {"documentId": 1, "screenCount": 1},
    "NarrateInput": {"force": False},
}
