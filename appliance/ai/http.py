"""How AI errors look to API callers: the D1 error body with the right status and Retry-After."""

from __future__ import annotations

from appliance.ai import errors
from appliance.errors import ApiError, DomainError, as_api_error

_STATUS: list[tuple[type[Exception], int, str]] = [
    (errors.QueueFull, 503, "The on-box model is busy; retry shortly"),
    (errors.EngineUnavailable, 503, "No AI engine is available right now; retry shortly"),
    (errors.ModelUnavailable, 503, "The AI model is not installed or failed its checksum; ask the operator (appliance model verify)"),
    (errors.GenerationTimeout, 504, "The model did not finish in time; try fewer screens or a shorter prompt"),
    (errors.Cancelled, 409, "The job was cancelled"),
    (errors.PromptTooLong, 413, "The prompt and source text are too long for the model's context"),
    (errors.InvalidOutput, 502, "The model's answer did not pass validation; retry"),
    (errors.SchemaError, 500, "Internal error in the generation schema"),
    (errors.NarrationUnavailable, 503, "Narration is not installed on this appliance: the text-to-speech runtime "
     "(piper-tts and its voice) was not found; ask the operator to run `make tts-deps` or set [ai] tts_python"),
    (errors.NarrationFailed, 502, "Text-to-speech failed (the narration worker stopped or ran out of time); "
     "retry, or narrate fewer screens at once"),
]


def public_message(exc: BaseException) -> str:
    for cls, _status, message in _STATUS:
        if isinstance(exc, cls):
            return message
    if isinstance(exc, ApiError | DomainError):
        return str(as_api_error(exc).detail)
    return "The AI job failed"


def to_api_error(exc: BaseException) -> ApiError:
    if isinstance(exc, ApiError | DomainError):
        return as_api_error(exc)
    for cls, status, message in _STATUS:
        if isinstance(exc, cls):
            retry = getattr(exc, "retry_after", None) or (5 if status == 503 else None)
            return ApiError(status, message, {"retry-after": str(retry)} if retry else None)
    return ApiError(500, "The AI job failed")
