"""What a learner's browser may send to the tracking routes.

The body of `POST /embed/api/track` and `POST /scorm/api/track` comes from a page the learner
controls, so every field is checked against the player's contract (docs/embeds.md "Transport")
before anything is stored: types, ranges (a feedback rating is 1-5, progress 0-100) and lengths.
Anything else is a 422. Unknown fields are ignored (never stored), so a newer player still works.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from appliance.errors import ApiError

Id = int | Annotated[str, msgspec.Meta(max_length=100)]
AnswerId = int | Annotated[str, msgspec.Meta(max_length=200)]
Answer = Annotated[list[AnswerId], msgspec.Meta(max_length=100)] | AnswerId


class Learner(msgspec.Struct, kw_only=True):
    """The LMS's learner on the SCORM route (`cmi.core.student_id` / `student_name`)."""

    id: int | Annotated[str, msgspec.Meta(max_length=200)] | None = None
    name: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class TrackInput(msgspec.Struct, kw_only=True):
    event: Literal["start", "progress", "attempt", "complete", "feedback"]
    courseId: Annotated[int, msgspec.Meta(ge=1)] | None = None
    seconds: Annotated[float, msgspec.Meta(ge=0, le=7 * 86400)] | None = None
    progress: Annotated[float, msgspec.Meta(ge=0, le=100)] | None = None
    screenId: Id | None = None
    screenIndex: Annotated[int, msgspec.Meta(ge=0, le=100_000)] | None = None
    answers: Annotated[dict[Annotated[str, msgspec.Meta(max_length=100)], Answer], msgspec.Meta(max_length=500)] | None = None
    feedback: Annotated[int, msgspec.Meta(ge=1, le=5)] | None = None
    learner: Learner | None = None


REQUIRED = {"progress": "progress", "attempt": "screenId", "feedback": "feedback"}


def parse(body: dict[str, Any]) -> TrackInput:
    """The checked event, or ApiError(422) naming the first field that breaks the contract."""
    try:
        value = msgspec.convert(body, TrackInput)
    except msgspec.ValidationError as exc:
        raise ApiError(422, f"Invalid tracking event: {_explain(str(exc))}") from None
    needed = REQUIRED.get(value.event)
    if needed is not None and getattr(value, needed) is None:
        raise ApiError(422, f"Invalid tracking event: {needed} is required for {value.event}")
    return value


def _explain(message: str) -> str:
    """msgspec's message, made to read like the contract: `Expected `int` <= 5 - at `$.feedback``."""
    if "$.feedback" in message:
        return "feedback must be a rating from 1 to 5 - at `$.feedback`"
    if "$.progress" in message:
        return "progress must be a number from 0 to 100 - at `$.progress`"
    if "$.event" in message or "`event`" in message:
        return "event must be start, progress, attempt, complete or feedback"
    return message[:300]
