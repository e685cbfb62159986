"""Errors raised by the AI engines. The server maps them to HTTP responses (see docs/ai.md)."""

from __future__ import annotations


class AIError(Exception):
    """Base class of every error raised by :mod:`appliance.ai`."""


class ModelUnavailable(AIError):
    """The model file is missing, corrupt (SHA-256 mismatch) or could not be loaded. Map to 503."""


class QueueFull(AIError):
    """The bounded request queue is full. Map to 503 with ``Retry-After: retry_after``."""

    def __init__(self, message: str = "AI request queue is full", retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Cancelled(AIError):
    """The request was cancelled through its :class:`~appliance.ai.engine.CancelToken`."""


class GenerationTimeout(AIError):
    """The request did not finish within its timeout (queue wait included). Map to 504."""


class EngineUnavailable(AIError):
    """No engine can serve the request (all remote engines down, circuit open, or engine closed).
    Map to 503 with ``Retry-After: retry_after``."""

    def __init__(self, message: str = "no AI engine available", retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidOutput(AIError):
    """The model output did not parse or did not validate against the schema (e.g. truncated by
    max_tokens). Map to 502/422; the caller may retry with a larger max_tokens."""


class SchemaError(AIError):
    """The JSON schema is not supported by the grammar converter. Map to 500 (programming error)."""


class PromptTooLong(AIError):
    """The prompt does not fit into the model context (n_ctx) with room to answer. Map to 413/422."""


class NarrationUnavailable(AIError):
    """The text-to-speech runtime (the side venv with piper-tts and its voice) is not installed
    or cannot start. Map to 503 (appliance.ai.narration)."""


class NarrationFailed(AIError):
    """The text-to-speech worker crashed, ran out of memory or passed its deadline. Map to 502."""
