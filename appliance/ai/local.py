"""In-process llama.cpp engine (llama-cpp-python 0.3.36).

A ``llama_cpp.Llama`` object is not thread-safe (unserialised calls segfault or abort the process),
so exactly ONE worker thread owns it: it loads the model, then runs the requests of a bounded queue
as sequences of one batched context (appliance.ai.batching: continuous batching, prompt-prefix
reuse, jump-forward over schema-forced text). Callers on any thread submit a job and read its
output channel. A full queue raises :class:`QueueFull` at once (503 + Retry-After). Timeouts count
from submission (queue wait included); cancel tokens are checked before every batch step.

Fairness: a free sequence goes to the waiting request with the lowest priority number, then to the
owner (a course, a caller) holding the fewest sequences, then the oldest; one owner never holds
more than ``parallel - 1`` sequences, so another caller always finds one free within a step.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .batching import BatchDecoder, make_context
from .cpu_build import import_llama, try_select
from .cpu_build import loaded as loaded_build
from .engine import DEFAULT_SAMPLING, CancelToken, Engine, EngineStatus, Messages, SamplingParams
from .errors import (
    AIError,
    Cancelled,
    EngineUnavailable,
    GenerationTimeout,
    InvalidOutput,
    ModelUnavailable,
    PromptTooLong,
    QueueFull,
)
from .grammar import schema_to_gbnf
from .models import ModelSpec, resolve_model, sha256_file
from .schema import validate

DEFAULT_TIMEOUT = 300.0
DEFAULT_PARALLEL = 6  # sequences decoded together (measured: 4 in one decode ~1.3x one, 16 ~1.5x)
KV_PER_SEQUENCE_FACTOR = 4  # the shared KV cache holds n_ctx x this many tokens
N_BATCH = 512
VALIDATION_RETRIES = 2  # extra samples when the output breaks a rule the grammar cannot express
TIMEOUT_GRACE = 2.0  # the consumer waits this much beyond the deadline for the worker's own timeout


@dataclass
class GenStats:
    """Per-request measurements (tokens/s counted as in the lab: (n-1) / first-token-to-end)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    prompt_seconds: float = 0.0
    gen_seconds: float = 0.0  # first sampled token to end
    queue_seconds: float = 0.0
    grammar_rejections: int = 0
    cached_tokens: int = 0  # prompt tokens reused from the KV cache (a shared prefix)
    forced_tokens: int = 0  # completion tokens appended without sampling (jump-forward)
    stop_reason: str = ""  # "eog" | "length"
    _t_first: float = 0.0
    _t_prompt: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        n = self.completion_tokens - 1
        return n / self.gen_seconds if n > 0 and self.gen_seconds > 0 else 0.0


@dataclass
class Completion:
    text: str
    stats: GenStats


@dataclass
class _Job:
    messages: Messages
    schema: dict[str, Any] | None
    max_tokens: int
    sampling: SamplingParams
    cancel: CancelToken
    deadline: float
    owner: int = 0  # requests sharing a cancel token (one course job) are one owner for fairness
    submitted: float = field(default_factory=time.monotonic)
    out: queue.SimpleQueue[tuple[str, Any]] = field(default_factory=queue.SimpleQueue)
    tokens: list[int] | None = None  # the prompt, tokenized by the worker
    stats: GenStats = field(default_factory=GenStats)
    started: float = 0.0


_STOP = object()


def _llama_module() -> Any:
    try:
        return import_llama("llama_cpp")
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ModelUnavailable("llama-cpp-python is not installed (run build/llama-wheel.sh)") from exc


def default_threads() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


class LocalEngine(Engine):
    """llama.cpp in this process. See docs/ai.md for the knobs.

    ``model`` is a manifest name (default: the manifest's default model); or pass ``model_path``
    (optionally with ``sha256``) to load a file directly. Loading happens in the worker thread in
    the background; :meth:`status` is LOADING until then, and :meth:`wait_ready` blocks.
    """

    name = "local"

    def __init__(
        self,
        model: str | None = None,
        *,
        models_dir: Path | None = None,
        model_path: Path | str | None = None,
        sha256: str | None = None,
        n_ctx: int | None = None,
        n_threads: int | None = None,
        cpu_build: str = "auto",
        queue_size: int = 8,
        timeout: float = DEFAULT_TIMEOUT,
        chat_format: str | None = None,
        parallel: int = DEFAULT_PARALLEL,
        kv_cells: int | None = None,
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be >= 1")
        if parallel < 1:
            raise ValueError("parallel must be >= 1")
        self.parallel = parallel
        self.kv_cells = kv_cells or 0
        self._model_name = model
        self._models_dir = models_dir
        self._model_path = Path(model_path) if model_path is not None else None
        self._sha256 = sha256
        self._n_ctx_req = n_ctx
        self.n_threads = n_threads or default_threads()
        # chosen now, before a request's grammar or the model load imports llama_cpp in this process
        self._build_error = try_select(cpu_build)  # ai.cpu_build asks for what this CPU or install lacks
        self.queue_size = queue_size
        self.default_timeout = timeout
        self._chat_format_req = chat_format

        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._closed = False
        self._status = EngineStatus.LOADING
        self._error: str | None = None
        self._ready = threading.Event()
        self._decoder: BatchDecoder | None = None
        self._context: Any = None
        self._durations: deque[float] = deque(maxlen=8)
        # since start, for benchmarks and the operator: tokens read, found cached, generated, forced
        self.totals = dict.fromkeys(("prompt_tokens", "cached_tokens", "completion_tokens", "forced_tokens"), 0)
        self.spec: ModelSpec | None = None
        self.n_ctx = 0
        self._llm: Any = None
        self._formatter: Any = None
        self._worker = threading.Thread(target=self._run, name="ai-local-worker", daemon=True)
        self._worker.start()

    # ------------------------------------------------------------------ public API

    def status(self) -> EngineStatus:
        return self._status

    def wait_ready(self, timeout: float | None = None) -> EngineStatus:
        """Block until the model is loaded or failed to load; returns the status."""
        self._ready.wait(timeout)
        return self._status

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self._status.value,
            "error": self._error,
            "model": self.spec.name if self.spec else self._model_name,
            "n_ctx": self.n_ctx,
            "n_threads": self.n_threads,
            "cpu_build": loaded_build(),
            "queue_size": self.queue_size,
            "queued": self._queue.qsize(),
            "parallel": self.parallel,
            "running": len(self._decoder.active) if self._decoder is not None else 0,
            "busy": bool(self._decoder is not None and self._decoder.active),
            "kv_cells": self.kv_cells,
            "totals": dict(self.totals),
        }

    def complete(
        self,
        messages: Messages,
        *,
        schema: dict[str, Any] | None = None,
        max_tokens: int = 1024,
        timeout: float | None = None,
        cancel: CancelToken | None = None,
        sampling: SamplingParams = DEFAULT_SAMPLING,
    ) -> Completion:
        """Blocking generation returning the raw text and :class:`GenStats` (used by the bench)."""
        job = self._submit(messages, schema, max_tokens, timeout, cancel, sampling)
        parts: list[str] = []
        it = self._consume(job)
        try:
            while True:
                parts.append(next(it))
        except StopIteration as stop:
            stats: GenStats = stop.value
        return Completion("".join(parts), stats)

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
        # The grammar guarantees syntax and most constraints; the few it cannot express (e.g. number
        # ranges) are checked here. A violation, a dead grammar state or a truncated answer (a small
        # model sometimes loops until max_tokens) gets up to VALIDATION_RETRIES fresh samples.
        deadline = time.monotonic() + (self.default_timeout if timeout is None else timeout)
        attempt = 0
        while True:
            try:
                c = self.complete(
                    messages,
                    schema=schema,
                    max_tokens=max_tokens,
                    timeout=max(0.1, deadline - time.monotonic()),
                    cancel=cancel,
                    sampling=sampling,
                )
                return parse_and_validate(c.text, schema, c.stats.stop_reason)
            except InvalidOutput:
                attempt += 1
                if sampling.temperature <= 0 or attempt > VALIDATION_RETRIES:
                    raise
                seed = None if sampling.seed is None else sampling.seed + 7919 * attempt
                sampling = dataclasses.replace(sampling, seed=seed)

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
        # Submit eagerly so that QueueFull/ModelUnavailable are raised by the call, not on first next().
        job = self._submit(messages, schema, max_tokens, timeout, cancel, sampling)
        return self._consume(job)

    def close(self, timeout: float = 30.0) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        # fail everything still queued, cancel the running job, then stop the worker
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Job):
                item.cancel.cancel()
                item.out.put(("error", EngineUnavailable("AI engine is shutting down")))
        decoder = self._decoder
        if decoder is not None:
            for seq in list(decoder.sequences):
                job = seq.job
                if job is not None:
                    job.cancel.cancel()
        self._queue.put(_STOP)
        if threading.current_thread() is not self._worker:
            self._worker.join(timeout)
        if self._status != EngineStatus.UNAVAILABLE:
            self._status = EngineStatus.CLOSED

    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ submission side

    def _retry_after(self) -> int:
        avg = sum(self._durations) / len(self._durations) if self._durations else 10.0
        return int(min(120, max(1, math.ceil(avg * (self._queue.qsize() + 1) / 2))))

    def _submit(
        self,
        messages: Messages,
        schema: dict[str, Any] | None,
        max_tokens: int,
        timeout: float | None,
        cancel: CancelToken | None,
        sampling: SamplingParams,
    ) -> _Job:
        if self._closed:
            raise EngineUnavailable("AI engine is closed")
        if self._status == EngineStatus.UNAVAILABLE:
            raise ModelUnavailable(self._error or "model unavailable")
        if max_tokens < 1:
            raise ValueError("max_tokens must be >= 1")
        if schema is not None:
            schema_to_gbnf(schema)  # SchemaError now, on the caller's thread
        t = self.default_timeout if timeout is None else timeout
        token = cancel or CancelToken()
        job = _Job(list(messages), schema, max_tokens, sampling, token, time.monotonic() + t, owner=id(token))
        with self._lock:
            if self._closed:
                raise EngineUnavailable("AI engine is closed")
            try:
                self._queue.put_nowait(job)
            except queue.Full:
                if self._purge_dead_jobs():
                    self._queue.put_nowait(job)
                    return job
                raise QueueFull(
                    f"AI queue is full ({self.queue_size} waiting)", retry_after=self._retry_after()
                ) from None
        return job

    def _purge_dead_jobs(self) -> int:
        """Drop queued jobs that were cancelled or expired (their callers are gone); returns how many."""
        now = time.monotonic()
        dead: list[_Job] = []
        q = self._queue
        with q.mutex:
            keep = []
            for item in q.queue:
                if isinstance(item, _Job) and (item.cancel.cancelled or now >= item.deadline):
                    dead.append(item)
                else:
                    keep.append(item)
            if dead:
                q.queue.clear()
                q.queue.extend(keep)
                q.unfinished_tasks -= len(dead)
                q.not_full.notify(len(dead))
        for job in dead:
            err = (
                Cancelled("AI request cancelled")
                if job.cancel.cancelled
                else GenerationTimeout("AI request timed out")
            )
            job.out.put(("error", err))
        return len(dead)

    def _consume(self, job: _Job) -> Generator[str, None, GenStats]:
        """Generator over the job's chunks; returns GenStats. Closing it early cancels the job."""
        finished = False
        try:
            while True:
                wait = job.deadline - time.monotonic() + TIMEOUT_GRACE
                try:
                    kind, payload = job.out.get(timeout=max(0.0, wait))
                except queue.Empty:
                    raise GenerationTimeout("AI request timed out") from None
                if kind == "chunk":
                    yield payload
                elif kind == "done":
                    finished = True
                    stats: GenStats = payload
                    return stats  # the generator's return value carries the stats
                else:
                    finished = True
                    raise payload
        finally:
            if not finished:
                job.cancel.cancel()

    # ------------------------------------------------------------------ worker side

    def _load(self) -> None:
        if self._build_error:
            raise ModelUnavailable(self._build_error)
        llama_cpp = _llama_module()
        if self._model_path is not None:
            path = self._model_path
            if not path.is_file():
                raise ModelUnavailable(f"model file {path} is missing")
            if self._sha256 and sha256_file(path) != self._sha256.lower():
                raise ModelUnavailable(f"model file {path} is corrupt (sha256 mismatch)")
            n_ctx = self._n_ctx_req or 4096
            chat_format = self._chat_format_req or "gguf"
        else:
            spec, path = resolve_model(self._model_name, self._models_dir)
            self.spec = spec
            n_ctx = self._n_ctx_req or spec.n_ctx
            chat_format = self._chat_format_req or spec.chat_format
        kv_cells = self.kv_cells or n_ctx * KV_PER_SEQUENCE_FACTOR
        try:
            # Llama's own context holds one sequence; it is replaced below by the batched one, so
            # it is made as small as llama.cpp allows
            llm = llama_cpp.Llama(
                model_path=str(path), n_ctx=256, n_threads=self.n_threads, n_threads_batch=self.n_threads,
                n_batch=256, verbose=False,
            )
            context = make_context(llm, parallel=self.parallel, kv_cells=kv_cells, n_batch=N_BATCH)
        except Exception as exc:  # llama_cpp raises ValueError on a bad file
            raise ModelUnavailable(f"cannot load model {path}: {exc}") from exc
        llm._ctx.close()
        llm._ctx = context  # tokenizer, metadata and samplers now see the batched context
        self._llm = llm
        self._context = context
        self.n_ctx = min(n_ctx, kv_cells)
        self.kv_cells = kv_cells
        self._formatter = _make_formatter(llm, chat_format)
        self._decoder = BatchDecoder(llm, context.ctx, parallel=self.parallel, kv_cells=kv_cells,
                                     n_batch=N_BATCH, on_finish=self._finished)

    def _run(self) -> None:
        try:
            self._load()
        except Exception as exc:
            self._error = str(exc) if isinstance(exc, AIError) else f"model load failed: {exc!r}"
            self._status = EngineStatus.UNAVAILABLE
        else:
            self._status = EngineStatus.READY if not self._closed else EngineStatus.CLOSED
        finally:
            self._ready.set()
        stopping = False
        while not stopping:
            decoder = self._decoder
            if decoder is None or not decoder.active:
                item = self._queue.get()  # idle: sleep until a request (or the stop) arrives
                if item is _STOP:
                    break
                self._start(item)
                decoder = self._decoder
            stopping = self._admit_waiting()
            if decoder is not None and decoder.active:
                try:
                    decoder.step()
                except Exception as exc:  # a bug, not the model's answer: fail the batch, keep serving
                    decoder.fail_all(exc if isinstance(exc, AIError) else AIError(f"generation failed: {exc!r}"))
        if self._decoder is not None:
            self._decoder.fail_all(EngineUnavailable("AI engine is shutting down"))
        self._release()

    def _admit_waiting(self) -> bool:
        """Move waiting requests onto free sequences (fair order, see the module docstring).
        Returns True when the stop sentinel was found."""
        decoder = self._decoder
        q = self._queue
        while True:
            with q.mutex:
                items = list(q.queue)
                if not items:
                    return False
                if _STOP in items:
                    return True
                pick = self._choose(items)
                if pick is None:
                    return False
                q.queue.remove(pick)
                q.unfinished_tasks -= 1
                q.not_full.notify()
            self._start(pick)
            if decoder is None:
                return False

    def _choose(self, items: list[_Job]) -> _Job | None:
        decoder = self._decoder
        if decoder is None:
            return items[0]
        for job in items:  # dead requests go at once, whatever the room
            if job.cancel.cancelled or time.monotonic() >= job.deadline:
                return job
        owners = decoder.owners()
        cap = max(1, self.parallel - 1)
        ready = []
        for job in items:
            if owners.get(job.owner, 0) >= cap:
                continue
            if job.tokens is None:
                try:
                    job.tokens = self._tokenize(job)
                except Exception:  # a broken prompt is reported by _start
                    return job
            if decoder.fits(len(job.tokens), min(job.max_tokens, max(8, self.n_ctx - len(job.tokens)))):
                ready.append(job)
        if not ready:
            return None
        return min(ready, key=lambda j: (j.sampling.priority, owners.get(j.owner, 0), j.submitted))

    def _start(self, job: _Job) -> None:
        """Begin ``job`` on a free sequence, or answer it at once when it cannot run."""
        if self._status != EngineStatus.READY or self._decoder is None:
            job.out.put(("error", ModelUnavailable(self._error or "model unavailable")))
            return
        if job.cancel.cancelled:
            job.out.put(("error", Cancelled("AI request cancelled")))
            return
        if time.monotonic() >= job.deadline:
            job.out.put(("error", GenerationTimeout("AI request timed out in the queue")))
            return
        stats = job.stats
        stats.queue_seconds = time.monotonic() - job.submitted
        try:
            tokens = job.tokens if job.tokens is not None else self._tokenize(job)
            room = self.n_ctx - len(tokens)
            if room < 8:
                raise PromptTooLong(f"prompt has {len(tokens)} tokens; the context holds {self.n_ctx}")
            self._decoder.admit(job, tokens, min(job.max_tokens, room), stats)
        except Exception as exc:
            job.out.put(("error", exc if isinstance(exc, AIError) else AIError(f"generation failed: {exc!r}")))
            return
        job.started = time.monotonic()

    def _tokenize(self, job: _Job) -> list[int]:
        prompt, add_bos = self._formatter(job.messages)
        tokens: list[int] = self._llm.tokenize(prompt.encode("utf-8"), add_bos=add_bos, special=True)
        return tokens

    def _finished(self, job: _Job, error: BaseException | None) -> None:
        self._durations.append(time.monotonic() - (job.started or job.submitted))
        for key in self.totals:
            self.totals[key] += getattr(job.stats, key)
        if error is not None:
            job.out.put(("error", error))
        else:
            job.out.put(("done", job.stats))

    def _release(self) -> None:
        decoder, self._decoder = self._decoder, None
        if decoder is not None:
            decoder.close()
        llm, self._llm = self._llm, None
        if llm is not None:
            try:
                llm.close()
                if self._context is not None:
                    self._context.close()
            except Exception:  # noqa: S110 - best effort at shutdown
                pass


def parse_and_validate(text: str, schema: dict[str, Any], stop_reason: str = "eog") -> Any:
    """Strict ``json.loads`` + schema validation; :class:`InvalidOutput` with a clear reason."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        hint = " (output truncated by max_tokens)" if stop_reason == "length" else ""
        raise InvalidOutput(f"model output is not valid JSON{hint}: {exc}") from exc
    validate(value, schema)
    return value


def _make_formatter(llm: Any, chat_format: str) -> Any:
    """Messages -> prompt text, using the GGUF chat template or a named llama-cpp-python format."""
    fmt = import_llama("llama_cpp.llama_chat_format")
    if chat_format in ("gguf", "auto"):
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelUnavailable("model has no chat template in its GGUF; set chat_format in the manifest")
        eos_id, bos_id = llm.token_eos(), llm.token_bos()
        eos = llm._model.token_get_text(eos_id) if eos_id != -1 else ""
        bos = llm._model.token_get_text(bos_id) if bos_id != -1 else ""
        jinja = fmt.Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)

        def render(messages: Messages) -> tuple[str, bool]:
            return str(jinja(messages=list(messages)).prompt), False  # template adds BOS itself

        return render
    func = getattr(fmt, "format_" + chat_format.replace("-", "_"), None) or getattr(
        fmt, "format_" + chat_format.replace("-", ""), None
    )
    if func is None:
        raise ModelUnavailable(f"unknown chat_format {chat_format!r}")

    def render_named(messages: Messages) -> tuple[str, bool]:
        res = func(messages=list(messages))
        return str(res.prompt), not bool(getattr(res, "added_special", False))

    return render_named
