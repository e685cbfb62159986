"""The engine a server process uses when the model runs in its own process (docs/ai.md, "Model
process"): the :class:`~appliance.ai.engine.Engine` interface over the model process's Unix socket.

Each request is one connection: the request frame, then the model process's answer (see
:mod:`appliance.ai.process` for the frames). A request is accepted or refused (busy, unavailable, bad
schema) before :meth:`ProcessEngine.stream` returns, as in-process. One thread ("watch") holds a
connection that brings the engine's info every second: the status the health check reads, and the
instant notice that the model process died. One thread ("poll") sends the cancels of cancelled
tokens and ends requests past their deadline. When the model process dies, every request it was
running ends with :class:`EngineUnavailable` (503 with Retry-After on the AI routes; a job fails with
that message and can be submitted again), and requests made before it is back are refused the same
way at once.

Status: LOADING until the first model process has loaded its model (or failed to); after that a
model process that is gone or still loading reads UNAVAILABLE, so the health check keeps answering
"ok" while the model process is restarted (only the AI routes answer 503).
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

from . import errors
from .engine import DEFAULT_SAMPLING, CancelToken, Engine, EngineStatus, Messages, SamplingParams
from .errors import AIError, EngineUnavailable, GenerationTimeout
from .local import DEFAULT_TIMEOUT, TIMEOUT_GRACE, Completion, GenStats
from .model_host import ModelHost, address, read_secret, try_own
from .process import HEARTBEAT, ProtocolError, read_frame, send

RETRY_AFTER = 5  # seconds a refused caller is told to wait while the model process restarts
POLL = 0.05  # how often cancelled tokens and deadlines are looked at (a cancel's latency)
WATCH_TIMEOUT = HEARTBEAT * 10  # no info for this long: the model process is taken as gone
GONE = "the model process stopped (it is being restarted); retry shortly"


class _Flight:
    """One request in flight: its connection, its caller's token, its deadline."""

    def __init__(self, sock: socket.socket, token: CancelToken, deadline: float) -> None:
        self.sock = sock
        self.reader = sock.makefile("rb")
        self.token = token
        self.deadline = deadline
        self.cancel_sent = False
        self.expired = False
        self.ended = False
        self.lock = threading.Lock()  # the poll thread's sends never reach a closed, reused descriptor

    def cancel(self) -> None:
        with self.lock:
            if not self.ended and not self.cancel_sent:
                self.cancel_sent = True
                with contextlib.suppress(OSError):  # the connection already ended: its reader sees that
                    send(self.sock, {"op": "cancel"})

    def shutdown(self) -> None:
        """Wake the reader with end of file (deadline passed, engine closed)."""
        with self.lock:
            if not self.ended:
                with contextlib.suppress(OSError):  # already shut down by the other side
                    self.sock.shutdown(socket.SHUT_RDWR)

    def end(self) -> None:
        with self.lock:
            self.ended = True
            self.reader.close()
            self.sock.close()


class _Stream(Iterator[str]):
    """A request's chunks. Closing it (or dropping it) cancels the request, also before the first
    chunk was read: a generator not yet started would not run its clean-up, and its connection and
    its sequence in the model process would stay taken until the deadline."""

    def __init__(self, engine: ProcessEngine, flight: _Flight) -> None:
        self._engine = engine
        self._flight = flight
        self._chunks = engine._chunks(flight)
        self._started = False

    def __iter__(self) -> _Stream:
        return self

    def __next__(self) -> str:
        self._started = True
        return next(self._chunks)

    def close(self) -> None:
        if not self._started:
            self._started = True
            self._flight.token.cancel()
            self._engine._end(self._flight)
        self._chunks.close()

    def __del__(self) -> None:
        self.close()


def _error(msg: dict[str, Any]) -> Exception:
    """The model process's error frame as the exception the in-process engine would have raised."""
    name, message = str(msg.get("type")), str(msg.get("message", ""))
    cls = getattr(errors, name, None)
    if isinstance(cls, type) and issubclass(cls, AIError):
        if issubclass(cls, errors.QueueFull | errors.EngineUnavailable):
            return cls(message, retry_after=int(msg.get("retry_after") or RETRY_AFTER))
        return cls(message)
    if name == "ValueError":
        return ValueError(message)
    return AIError(f"generation failed: {name}: {message}")


class ProcessEngine(Engine):
    """The on-box engine in the model process; the same behaviour as :class:`LocalEngine`."""

    name = "local"

    def __init__(self, run_dir: Path, options: dict[str, Any], *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.run_dir = run_dir
        self.default_timeout = timeout
        self._options = options
        self._address = address(run_dir)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._closed = threading.Event()
        self._ready = threading.Event()  # the first model process loaded (or failed to), or died
        self._info: dict[str, Any] = {}
        self._connected = False
        self._flights: set[_Flight] = set()
        self._watch_sock: socket.socket | None = None
        self._host: ModelHost | None = None
        self._take_over()
        threading.Thread(target=self._watch, name="ai-model-watch", daemon=True).start()
        threading.Thread(target=self._poll, name="ai-model-poll", daemon=True).start()

    # ------------------------------------------------------------------ status

    def status(self) -> EngineStatus:
        if self._closed.is_set():
            return EngineStatus.CLOSED
        with self._lock:
            connected, status = self._connected, self._info.get("status", "loading")
        if not self._ready.is_set():
            return EngineStatus.LOADING
        if not connected or status == EngineStatus.LOADING.value:
            return EngineStatus.UNAVAILABLE
        return EngineStatus(status)

    def wait_ready(self, timeout: float | None = None) -> EngineStatus:
        """Block until the first model process has loaded its model (or failed, or died)."""
        self._ready.wait(timeout)
        return self.status()

    def info(self) -> dict[str, Any]:
        with self._lock:
            info, connected = dict(self._info), self._connected
        host = self._host
        pid, network = info.pop("pid", None), info.pop("network", None)
        info.update(
            name=self.name, status=self.status().value,
            process={"pid": pid if connected else None, "connected": connected, "network": network,
                     "owner": host is not None, "restarts": host.restarts if host is not None else None},
        )
        if not connected:
            info["error"] = "the model process is not running" if self._ready.is_set() else None
        return info

    # ------------------------------------------------------------------ requests

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
        flight, first = self._begin("json", messages, schema, max_tokens, timeout, cancel, sampling)
        try:
            if first.get("op") != "value":
                raise AIError(f"generation failed: unexpected answer {first.get('op')!r} from the model process")
            return first.get("value")
        finally:
            self._end(flight)

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
        flight, _accepted = self._begin("stream", messages, schema, max_tokens, timeout, cancel, sampling)
        return _Stream(self, flight)

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
        """The text and :class:`GenStats`, as :meth:`LocalEngine.complete` (the bench compares them)."""
        flight, _accepted = self._begin("complete", messages, schema, max_tokens, timeout, cancel, sampling)
        parts: list[str] = []
        it = _Stream(self, flight)
        try:
            while True:
                parts.append(next(it))
        except StopIteration as stop:
            stats: GenStats = stop.value
        return Completion("".join(parts), stats)

    def close(self) -> None:
        """Fail the requests in flight ("shutting down"), stop watching, and, in the owner, stop the
        model process. Idempotent."""
        if self._closed.is_set():
            return
        self._closed.set()
        with self._lock:
            flights, watch = list(self._flights), self._watch_sock
            self._changed.notify_all()
        for flight in flights:
            flight.token.cancel()
            flight.shutdown()
        if watch is not None:
            with contextlib.suppress(OSError):  # already closed by the model process
                watch.shutdown(socket.SHUT_RDWR)
        if self._host is not None:
            self._host.stop()

    # ------------------------------------------------------------------ one request

    def _begin(
        self,
        kind: str,
        messages: Messages,
        schema: dict[str, Any] | None,
        max_tokens: int,
        timeout: float | None,
        cancel: CancelToken | None,
        sampling: SamplingParams,
    ) -> tuple[_Flight, dict[str, Any]]:
        if self._closed.is_set():
            raise EngineUnavailable("AI engine is closed")
        if max_tokens < 1:
            raise ValueError("max_tokens must be >= 1")
        token = cancel or CancelToken()
        seconds = self.default_timeout if timeout is None else timeout
        try:
            sock = self._connect(
                "run", kind=kind, messages=[dict(m) for m in messages], schema=schema, max_tokens=max_tokens,
                timeout=seconds, sampling=dataclasses.asdict(sampling), owner=id(token),
            )
        except OSError:
            raise EngineUnavailable(GONE, retry_after=RETRY_AFTER) from None
        # the model process keeps the deadline (queue wait included); this one only guards against
        # a model process that stops answering without dying
        flight = _Flight(sock, token, time.monotonic() + seconds + TIMEOUT_GRACE + HEARTBEAT)
        with self._lock:
            self._flights.add(flight)
            self._changed.notify_all()
        try:
            return flight, self._next(flight)
        except BaseException:
            self._end(flight)
            raise

    def _next(self, flight: _Flight) -> dict[str, Any]:
        """The next frame of a request; its error, or EngineUnavailable when the model process is gone."""
        try:
            msg = read_frame(flight.reader)
        except (OSError, ProtocolError, ValueError):  # ValueError: the reader was closed by close()
            msg = None
        if msg is None:
            if flight.expired:
                raise GenerationTimeout("AI request timed out (the model process did not answer)")
            if self._closed.is_set():
                raise EngineUnavailable("AI engine is shutting down")
            self._gone()  # the status says so now, not when the watch thread next runs
            raise EngineUnavailable(GONE, retry_after=RETRY_AFTER)
        if msg.get("op") == "error":
            raise _error(msg)
        return msg

    def _chunks(self, flight: _Flight) -> Generator[str, None, GenStats]:
        """The request's chunks; returns its GenStats. Closing it early cancels the request (and,
        as in-process, the caller's token)."""
        finished = False
        try:
            while True:
                try:
                    msg = self._next(flight)
                except BaseException:
                    finished = True
                    raise
                if msg.get("op") == "chunk":
                    yield str(msg.get("text", ""))
                elif msg.get("op") == "done":
                    finished = True
                    return GenStats(**msg.get("stats", {}))
        finally:
            if not finished:
                flight.token.cancel()
            self._end(flight)

    def _end(self, flight: _Flight) -> None:
        with self._lock:
            self._flights.discard(flight)
        flight.end()  # closing the connection early tells the model process to cancel

    def _connect(self, op: str, **fields: Any) -> socket.socket:
        secret = read_secret(self.run_dir)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(5.0)
            sock.connect(self._address)
            sock.settimeout(None)
            send(sock, {"op": op, "secret": secret, **fields})
        except BaseException:
            sock.close()
            raise
        return sock

    # ------------------------------------------------------------------ background threads

    def _take_over(self) -> None:
        """Become the owner when no process is (at start, or after the owner died)."""
        if self._host is None and not self._closed.is_set():
            fd = try_own(self.run_dir)
            if fd is not None:
                self._host = ModelHost(self.run_dir, self._options, fd)

    def _watch(self) -> None:
        delay = 0.05
        while not self._closed.is_set():
            self._take_over()
            try:
                sock = self._connect("watch")
            except OSError:  # not (yet) listening: the owner is starting or restarting it
                self._gone()
                self._closed.wait(delay)
                delay = min(delay * 2, 1.0)
                continue
            delay = 0.05
            with self._lock:
                self._watch_sock = sock
            try:
                sock.settimeout(WATCH_TIMEOUT)
                reader = sock.makefile("rb")
                while (msg := read_frame(reader)) is not None and msg.get("op") == "info":
                    self._seen(msg.get("info") or {})
            except (OSError, ProtocolError):
                pass  # the model process died or went silent: handled below, as an end of file
            finally:
                sock.close()
            self._gone()

    def _seen(self, info: dict[str, Any]) -> None:
        with self._lock:
            self._info, self._connected = info, True
        if info.get("status") != EngineStatus.LOADING.value:
            self._ready.set()

    def _gone(self) -> None:
        with self._lock:
            was, self._connected = self._connected, False
        host = self._host
        if was or (host is not None and (host.restarts or host.failed_starts)):
            self._ready.set()  # wait_ready() returns: the first model process died (or never started)

    def _poll(self) -> None:
        while not self._closed.is_set():
            with self._lock:
                while not self._flights and not self._closed.is_set():
                    self._changed.wait()
                flights = list(self._flights)
            now = time.monotonic()
            for flight in flights:
                if flight.token.cancelled:
                    flight.cancel()
                if now >= flight.deadline and not flight.expired:
                    flight.expired = True
                    flight.shutdown()
            self._closed.wait(POLL)
