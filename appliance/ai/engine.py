"""The one engine interface shared by the local (llama.cpp) and remote (OpenAI-compatible) engines.

Blocking methods may be called from any thread. Async wrappers (``agenerate_json``, ``astream``) run
the blocking call in a worker thread so that the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import enum
import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict


class Message(TypedDict):
    role: str  # "system" | "user" | "assistant"
    content: str


Messages = Sequence[Message]


class EngineStatus(enum.StrEnum):
    READY = "ready"
    LOADING = "loading"
    UNAVAILABLE = "unavailable"
    CLOSED = "closed"


@dataclass(frozen=True)
class SamplingParams:
    """Sampling knobs; defaults are those of the lab benchmarks (good for JSON course drafts)."""

    temperature: float = 0.3
    top_k: int = 40
    top_p: float = 0.9
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    seed: int | None = None  # None: random per request
    # scheduling, local engine only: a lower number gets a free sequence first and decodes first in
    # every step; at batching.ALONE_PRIORITY (-2) or below it runs alone, so a course's first screen
    # reaches the author sooner
    priority: int = 0
    # local engine only: False keeps Han, kana and hangul out of every JSON string (the grammar
    # refuses them). Qwen2.5 slips Chinese words into English text ("muscle疲劳"); a caller whose
    # input and target language use none of those scripts turns them off.
    allow_cjk: bool = True


DEFAULT_SAMPLING = SamplingParams()


class CancelToken:
    """Cooperative cancellation: engines check it between tokens (local) or chunks (remote)."""

    def __init__(self, parent: CancelToken | None = None) -> None:
        self._event = threading.Event()
        self._parent = parent

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set() or (self._parent is not None and self._parent.cancelled)

    def child(self) -> CancelToken:
        """A token cancelled with this one that can also be cancelled alone (one request of a job
        stopped early without stopping the job)."""
        return CancelToken(self)


class Engine(ABC):
    """What the server uses. All errors are subclasses of :class:`appliance.ai.errors.AIError`."""

    name: str = "engine"

    @abstractmethod
    def generate_json(
        self,
        messages: Messages,
        schema: dict[str, Any],
        *,
        max_tokens: int = 1024,
        timeout: float | None = None,
        cancel: CancelToken | None = None,
        sampling: SamplingParams = DEFAULT_SAMPLING,
    ) -> Any:
        """Generate a JSON value constrained by ``schema``; it is parsed and validated before return.

        Raises QueueFull, GenerationTimeout, Cancelled, ModelUnavailable, EngineUnavailable,
        InvalidOutput (e.g. truncated by max_tokens).
        """

    @abstractmethod
    def stream(
        self,
        messages: Messages,
        *,
        schema: dict[str, Any] | None = None,
        max_tokens: int = 1024,
        timeout: float | None = None,
        cancel: CancelToken | None = None,
        sampling: SamplingParams = DEFAULT_SAMPLING,
    ) -> Iterator[str]:
        """Yield text chunks as they are generated (constrained to ``schema`` when given).

        Closing the iterator early (``.close()`` or leaving a ``for`` loop and dropping it) cancels
        the generation. Errors are raised from the iterator.
        """

    def generate_text(
        self,
        messages: Messages,
        *,
        max_tokens: int = 1024,
        timeout: float | None = None,
        cancel: CancelToken | None = None,
        sampling: SamplingParams = DEFAULT_SAMPLING,
    ) -> str:
        """Free-text generation (the concatenated :meth:`stream`)."""
        return "".join(
            self.stream(messages, max_tokens=max_tokens, timeout=timeout, cancel=cancel, sampling=sampling)
        )

    @abstractmethod
    def status(self) -> EngineStatus: ...

    def info(self) -> dict[str, Any]:
        """Details for health/admin endpoints (model, queue depth, endpoints...)."""
        return {"name": self.name, "status": self.status().value}

    @abstractmethod
    def close(self) -> None:
        """Stop accepting work, cancel queued and running requests, release resources. Idempotent."""

    # ------------------------------------------------------------------ async wrappers

    async def agenerate_json(
        self,
        messages: Messages,
        schema: dict[str, Any],
        *,
        max_tokens: int = 1024,
        timeout: float | None = None,
        cancel: CancelToken | None = None,
        sampling: SamplingParams = DEFAULT_SAMPLING,
    ) -> Any:
        """:meth:`generate_json` in a thread; cancelling the awaiting task cancels the generation."""
        token = cancel or CancelToken()
        try:
            return await asyncio.to_thread(
                self.generate_json,
                messages,
                schema,
                max_tokens=max_tokens,
                timeout=timeout,
                cancel=token,
                sampling=sampling,
            )
        except asyncio.CancelledError:
            token.cancel()
            raise

    async def astream(
        self,
        messages: Messages,
        *,
        schema: dict[str, Any] | None = None,
        max_tokens: int = 1024,
        timeout: float | None = None,
        cancel: CancelToken | None = None,
        sampling: SamplingParams = DEFAULT_SAMPLING,
    ) -> AsyncIterator[str]:
        """Async iterator over :meth:`stream`; stopping iteration cancels the generation."""
        token = cancel or CancelToken()
        loop = asyncio.get_running_loop()
        q: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        def pump() -> None:
            try:
                for chunk in self.stream(
                    messages,
                    schema=schema,
                    max_tokens=max_tokens,
                    timeout=timeout,
                    cancel=token,
                    sampling=sampling,
                ):
                    loop.call_soon_threadsafe(q.put_nowait, ("chunk", chunk))
                    if token.cancelled:
                        break
                loop.call_soon_threadsafe(q.put_nowait, ("end", None))
            except BaseException as exc:  # re-raised in the consumer
                loop.call_soon_threadsafe(q.put_nowait, ("error", exc))

        task = loop.run_in_executor(None, pump)
        try:
            while True:
                kind, payload = await q.get()
                if kind == "chunk":
                    yield payload
                elif kind == "end":
                    break
                else:
                    raise payload
        finally:
            token.cancel()
            await asyncio.shield(task)
