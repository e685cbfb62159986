"""The builder's request bodies, typed as msgspec Structs like the headless routes' bodies.

A builder route checks the session before it reads the body (a view session gets 403 whatever it
sends), so bodies are decoded in the handler with `body_of` rather than by Litestar's `data`
parameter. A refused field answers 422 with the message the builder shows its author (each Struct's
`refusals`); a body that is not a JSON object answers 422, malformed JSON 400. Unknown fields are
ignored, an empty body is `{}`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import msgspec
from litestar import Request

from appliance.ai.generation import GENERATED_TYPES, MAX_SCREENS, REFINE_OPERATIONS
from appliance.courses import languages
from appliance.errors import ApiError

LANGUAGE = languages.TAG.pattern
Text = Annotated[str, msgspec.Meta(max_length=200)]
Prompt = Annotated[str, msgspec.Meta(max_length=4000)]
_FIELD = re.compile(r"at `\$\.(\w+)|required field `(\w+)`")


class Body(msgspec.Struct):
    refusals: ClassVar[dict[str, str]] = {}


B = TypeVar("B", bound=Body)


def refusal(kind: type[Body], problem: str) -> str:
    """The message for msgspec's `problem` with a body of `kind`."""
    found = _FIELD.search(problem)
    if found is None:  # the body itself: an array, a string, a number
        return "The body must be a JSON object"
    field = found.group(1) or found.group(2)
    return kind.refusals.get(field) or f"Validation failed: {problem}"


async def body_of(request: Request[Any, Any, Any], kind: type[B]) -> B:
    raw = await request.body()
    try:
        return msgspec.json.decode(raw if raw.strip() else b"{}", type=kind)
    except msgspec.ValidationError as exc:
        raise ApiError(422, refusal(kind, str(exc))) from None
    except msgspec.DecodeError:
        raise ApiError(400, "Malformed JSON body") from None


# -- the draft ------------------------------------------------------------------------------------
class SaveBody(Body):
    """`PUT /`: the revision edited (or `If-Match`), the content and the course's own fields."""

    revision: str | None = None
    content: dict[str, Any] | None = None  # its rules are validate_content's
    title: Annotated[str, msgspec.Meta(max_length=200, pattern=r"\S")] | None = None
    description: Annotated[str, msgspec.Meta(max_length=2000)] | None = None
    themeId: int | msgspec.UnsetType | None = msgspec.UNSET  # null clears the theme, absent keeps it
    refusals: ClassVar[dict[str, str]] = {
        "revision": "Send the revision you edited (If-Match header or a revision field)",
        "content": "content must be an object with start, finish and screens",
        "title": "title must be text of 1 to 200 characters",
        "description": "description must be text of at most 2000 characters",
        "themeId": "themeId must be a theme id or null",
    }


class PublishBody(Body):
    revision: str | None = None
    refusals: ClassVar[dict[str, str]] = {"revision": "revision must be the draft's revision tag"}


class GradeBody(Body):
    screenId: int | str | None = None
    answers: Any = msgspec.field(default_factory=dict)  # player.grade checks it as the player's route does


# -- AI -------------------------------------------------------------------------------------------
class CourseBody(Body):
    prompt: Annotated[str, msgspec.Meta(max_length=4000, pattern=r"\S")]
    screenCount: Annotated[int, msgspec.Meta(ge=1, le=MAX_SCREENS)] = 5
    audience: Text | None = None
    familiarity: Text | None = None
    tone: Text | None = None
    # into a course that has screens: "append" (titles kept unique, service.merge_screens) or
    # "replace" (the draft's screens give way to the generated ones); the builder asks the author
    mode: Literal["append", "replace"] = "append"
    refusals: ClassVar[dict[str, str]] = {
        "prompt": "Describe the course in a prompt of up to 4000 characters",
        "screenCount": f"screenCount must be a number from 1 to {MAX_SCREENS}",
        "mode": "mode must be append or replace",
        **{name: f"{name} must be text of at most 200 characters" for name in ("audience", "familiarity", "tone")},
    }


SOURCE_REFUSALS = {
    "prompt": "prompt must be text of at most 4000 characters",
    "fromCourse": "fromCourse must be true or false",
}


class ScreenBody(Body):
    """`ai/screen`: from a prompt, or (`fromCourse`) from the course's own content."""

    type: str = "text"
    prompt: Prompt | None = None
    fromCourse: bool = False
    title: str | None = None
    refusals: ClassVar[dict[str, str]] = {
        **SOURCE_REFUSALS,
        "type": f"type must be one of {', '.join(GENERATED_TYPES)}",
        "title": "title must be text",
    }


class QuizBody(Body):
    questionCount: Annotated[int, msgspec.Meta(ge=1, le=10)] = 3
    prompt: Prompt | None = None
    fromCourse: bool = False
    refusals: ClassVar[dict[str, str]] = {
        **SOURCE_REFUSALS,
        "questionCount": "questionCount must be a number from 1 to 10",
    }


class RefineBody(Body):
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]
    operation: str | None = None
    tone: str | None = None  # the first 60 characters are used
    refusals: ClassVar[dict[str, str]] = {
        "text": "Select some text (up to 4000 characters) to refine",
        "operation": f"operation must be one of {', '.join(REFINE_OPERATIONS)}",
        "tone": "tone must be text",
    }


class TranslateBody(Body):
    language: Annotated[str, msgspec.Meta(pattern=LANGUAGE)]
    refusals: ClassVar[dict[str, str]] = {"language": "language must be a code such as fr or pt-BR"}


class NarrateBody(Body):
    screenIds: Annotated[list[int], msgspec.Meta(max_length=200)] | None = None
    force: bool = False
    refusals: ClassVar[dict[str, str]] = {
        "screenIds": "screenIds must be a list of screen ids",
        "force": "force must be true or false",
    }


# -- documents ------------------------------------------------------------------------------------
class DocumentCourseBody(Body):
    documentId: int | None = None
    kind: str = "document"
    prompt: str | None = None
    audience: str | None = None
    familiarity: str | None = None
    tone: str | None = None
    screenCount: int | None = None  # clamped to 1..MAX_SCREENS
    refusals: ClassVar[dict[str, str]] = {
        "documentId": "documentId is required (upload the document first)",
        "kind": "kind must be document or presentation",
        "screenCount": "screenCount must be a number",
        **{name: f"{name} must be text" for name in ("prompt", "audience", "familiarity", "tone")},
    }
