"""OpenAI-compatible remote engines (llama.cpp server, vLLM, Ollama, LocalAI, llama_cpp.server).

:class:`RemotePool` holds several endpoints in priority order. Each request goes to the first
endpoint whose circuit breaker allows it; on a connection error, timeout, 5xx or unusable output it
fails over to the next one. A breaker opens after ``failure_threshold`` consecutive failures and
lets one trial request through (half-open) after ``cooldown`` seconds; a success closes it.
:meth:`RemotePool.check_health` probes ``GET /v1/models``; ``health_interval`` runs it in a
background thread. An optional ``fallback`` engine (e.g. the local one) is used when no endpoint
is available.

Structured output is requested as OpenAI ``response_format={"type": "json_schema", ...}``. Servers
that reject it with 400/422 (llama-cpp-python's own server only knows ``json_object`` + ``schema``)
are retried once with ``{"type": "json_object", "schema": ...}`` and remembered. Every result is
parsed and validated here, whatever the server promised.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from .engine import DEFAULT_SAMPLING, CancelToken, Engine, EngineStatus, Messages, SamplingParams
from .errors import AIError, Cancelled, EngineUnavailable, GenerationTimeout, InvalidOutput, QueueFull
from .grammar import without_extensions
from .local import parse_and_validate

DEFAULT_TIMEOUT = 300.0


@dataclass
class RemoteEndpoint:
    """One OpenAI-compatible server. ``url`` is the base, e.g. ``http://10.0.0.5:8080`` (``/v1`` optional)."""

    url: str
    model: str = "default"
    api_key: str | None = None
    name: str = ""
    response_format: str = "json_schema"  # or "json_object" (llama-cpp-python server style)

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")
        if self.url.endswith("/v1"):
            self.url = self.url[:-3]
        self.name = self.name or self.url

    @classmethod
    def from_config(cls, item: str | dict[str, Any]) -> RemoteEndpoint:
        """From a URL string or a dict with url/model/api_key/name/response_format (TOML table)."""
        if isinstance(item, str):
            return cls(url=item)
        return cls(**{k: v for k, v in item.items() if k in cls.__dataclass_fields__})


@dataclass
class CircuitBreaker:
    failure_threshold: int = 3
    cooldown: float = 30.0
    state: str = "closed"  # closed | open | half_open
    failures: int = 0
    opened_at: float = 0.0
    last_error: str = ""
    _trial_in_flight: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def allow(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            if self.state == "closed":
                return True
            if self.state == "open" and now - self.opened_at >= self.cooldown:
                self.state = "half_open"
                self._trial_in_flight = False
            if self.state == "half_open" and not self._trial_in_flight:
                self._trial_in_flight = True
                return True
            return False

    def success(self) -> None:
        with self._lock:
            self.state, self.failures, self._trial_in_flight, self.last_error = "closed", 0, False, ""

    def failure(self, error: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self.failures += 1
            self.last_error = error
            self._trial_in_flight = False
            if self.state == "half_open" or self.failures >= self.failure_threshold:
                self.state = "open"
                self.opened_at = now

    def release(self) -> None:
        """The request that got a half-open trial ended without a verdict (cancel, timeout, bad output)."""
        with self._lock:
            self._trial_in_flight = False

    def could_allow(self, now: float | None = None) -> bool:
        """Like :meth:`allow` but without taking the half-open trial."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if self.state == "closed":
                return True
            if self.state == "open":
                return now - self.opened_at >= self.cooldown
            return not self._trial_in_flight

    def retry_in(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        return max(0.0, self.cooldown - (now - self.opened_at)) if self.state == "open" else 0.0


def _rejects_json_schema(r: httpx.Response) -> bool:
    """Did the server refuse ``response_format.type = json_schema``? (llama-cpp-python's server
    answers 500 with a validation error; others 400/422.)"""
    if r.status_code not in (400, 415, 422, 500):
        return False
    text = r.text
    return "json_schema" in text or "response_format" in text


class _EndpointFailure(Exception):
    """Internal: this endpoint failed; try the next one."""


class RemotePool(Engine):
    name = "remote"

    def __init__(
        self,
        endpoints: Sequence[RemoteEndpoint | str | dict[str, Any]],
        *,
        failure_threshold: int = 3,
        cooldown: float = 30.0,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float = 3.0,
        health_interval: float | None = None,
        fallback: Engine | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.endpoints = [
            e if isinstance(e, RemoteEndpoint) else RemoteEndpoint.from_config(e) for e in endpoints
        ]
        if not self.endpoints and fallback is None:
            raise ValueError("RemotePool needs at least one endpoint or a fallback")
        self.breakers = {e.name: CircuitBreaker(failure_threshold, cooldown) for e in self.endpoints}
        self.default_timeout = timeout
        self.connect_timeout = connect_timeout
        self.fallback = fallback
        self._closed = False
        self._client = httpx.Client(
            transport=transport, timeout=httpx.Timeout(timeout, connect=connect_timeout)
        )
        self._stop = threading.Event()
        self._health_thread: threading.Thread | None = None
        if health_interval:
            self._health_thread = threading.Thread(
                target=self._health_loop, args=(health_interval,), name="ai-remote-health", daemon=True
            )
            self._health_thread.start()

    # ------------------------------------------------------------------ health

    def _headers(self, ep: RemoteEndpoint) -> dict[str, str]:
        return {"Authorization": f"Bearer {ep.api_key}"} if ep.api_key else {}

    def check_health(self) -> dict[str, bool]:
        """Probe every endpoint (``GET /v1/models``) and update its breaker; returns name -> healthy."""
        out = {}
        for ep in self.endpoints:
            br = self.breakers[ep.name]
            try:
                r = self._client.get(
                    f"{ep.url}/v1/models",
                    headers=self._headers(ep),
                    timeout=httpx.Timeout(self.connect_timeout * 2, connect=self.connect_timeout),
                )
                ok = r.status_code == 200
            except httpx.HTTPError as exc:
                ok, err = False, f"health: {exc!r}"
            else:
                err = f"health: HTTP {r.status_code}"
            if ok:
                br.success()
            else:
                br.failure(err)
            out[ep.name] = ok
        return out

    def _health_loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.check_health()
            except Exception:  # noqa: S112 - never let the probe thread die
                continue

    def status(self) -> EngineStatus:
        if self._closed:
            return EngineStatus.CLOSED
        if any(b.state != "open" or b.retry_in() == 0 for b in self.breakers.values()):
            return EngineStatus.READY
        if self.fallback is not None:
            return self.fallback.status()
        return EngineStatus.UNAVAILABLE

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status().value,
            "endpoints": [
                {
                    "name": e.name,
                    "model": e.model,
                    "state": self.breakers[e.name].state,
                    "failures": self.breakers[e.name].failures,
                    "last_error": self.breakers[e.name].last_error,
                }
                for e in self.endpoints
            ],
            "fallback": self.fallback.info() if self.fallback else None,
        }

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._client.close()

    # ------------------------------------------------------------------ requests

    def _body(
        self,
        ep: RemoteEndpoint,
        messages: Messages,
        schema: dict[str, Any] | None,
        max_tokens: int,
        sampling: SamplingParams,
        stream: bool,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": ep.model,
            "messages": list(messages),
            "max_tokens": max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "stream": stream,
        }
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if schema is not None:
            schema = without_extensions(schema)
            if ep.response_format == "json_object":
                body["response_format"] = {"type": "json_object", "schema": schema}
            else:
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "response", "schema": schema, "strict": True},
                }
        return body

    def _allowed(self) -> Iterator[RemoteEndpoint]:
        """Endpoints in priority order whose breaker lets a request through, decided lazily (so a
        half-open trial is only taken when the endpoint is really tried) and released afterwards."""
        if self._closed:
            raise EngineUnavailable("remote AI engines are closed")
        for ep in self.endpoints:
            br = self.breakers[ep.name]
            if not br.allow():
                continue
            try:
                yield ep
            finally:
                br.release()

    def _unavailable(self, errors: list[str]) -> EngineUnavailable:
        waits = [b.retry_in() for b in self.breakers.values() if b.state == "open"]
        detail = "; ".join(errors) if errors else "all circuit breakers open"
        return EngineUnavailable(
            f"no remote AI engine available ({detail})", retry_after=int(max(1, min(waits))) if waits else 5
        )

    def _post(self, ep: RemoteEndpoint, body: dict[str, Any], deadline: float) -> httpx.Response:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise GenerationTimeout("AI request timed out")
        try:
            r = self._client.post(
                f"{ep.url}/v1/chat/completions",
                json=body,
                headers=self._headers(ep),
                timeout=httpx.Timeout(remaining, connect=min(self.connect_timeout, remaining)),
            )
        except httpx.TimeoutException as exc:
            raise _EndpointFailure(f"{ep.name}: timeout") from exc
        except httpx.HTTPError as exc:
            raise _EndpointFailure(f"{ep.name}: {exc!r}") from exc
        if "response_format" in body and ep.response_format == "json_schema" and _rejects_json_schema(r):
            ep.response_format = "json_object"  # downgrade once for servers that only know json_object
            schema = body["response_format"]["json_schema"]["schema"]
            body = dict(body, response_format={"type": "json_object", "schema": schema})
            return self._post(ep, body, deadline)
        if r.status_code >= 400:
            raise _EndpointFailure(f"{ep.name}: HTTP {r.status_code} {r.text[:200]}")
        return r

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
        deadline = time.monotonic() + (self.default_timeout if timeout is None else timeout)
        errors: list[str] = []
        invalid_only = True
        for ep in self._allowed():
            if cancel is not None and cancel.cancelled:
                raise Cancelled("AI request cancelled")
            br = self.breakers[ep.name]
            try:
                r = self._post(ep, self._body(ep, messages, schema, max_tokens, sampling, False), deadline)
                data = r.json()
                choice = data["choices"][0]
                content = choice["message"]["content"] or ""
            except _EndpointFailure as exc:
                br.failure(str(exc))
                errors.append(str(exc))
                invalid_only = False
                continue
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                br.failure(f"{ep.name}: malformed response: {exc!r}")
                errors.append(f"{ep.name}: malformed response")
                invalid_only = False
                continue
            br.success()  # the server works; a bad answer is the model's fault, not the server's
            if cancel is not None and cancel.cancelled:
                raise Cancelled("AI request cancelled")
            try:
                return parse_and_validate(
                    content, schema, "length" if choice.get("finish_reason") == "length" else ""
                )
            except InvalidOutput as exc:
                errors.append(f"{ep.name}: {exc}")
                continue
        if self.fallback is not None:
            return self.fallback.generate_json(
                messages,
                schema,
                max_tokens=max_tokens,
                timeout=max(0.1, deadline - time.monotonic()),
                cancel=cancel,
                sampling=sampling,
            )
        if errors and invalid_only:
            raise InvalidOutput("; ".join(errors))
        raise self._unavailable(errors)

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
        deadline = time.monotonic() + (self.default_timeout if timeout is None else timeout)
        token = cancel or CancelToken()
        if self._closed:
            raise EngineUnavailable("remote AI engines are closed")
        if self.fallback is None and not any(b.could_allow() for b in self.breakers.values()):
            raise self._unavailable([])
        return self._stream(messages, schema, max_tokens, deadline, token, sampling)

    def _stream(
        self,
        messages: Messages,
        schema: dict[str, Any] | None,
        max_tokens: int,
        deadline: float,
        cancel: CancelToken,
        sampling: SamplingParams,
    ) -> Iterator[str]:
        errors: list[str] = []
        for ep in self._allowed():
            br = self.breakers[ep.name]
            started = False
            try:
                for chunk in self._stream_one(ep, messages, schema, max_tokens, deadline, cancel, sampling):
                    started = True
                    yield chunk
                br.success()
                return
            except _EndpointFailure as exc:
                br.failure(str(exc))
                if started:  # text already went out: cannot fail over transparently
                    raise EngineUnavailable(f"remote AI engine failed mid-stream: {exc}") from exc
                errors.append(str(exc))
        if self.fallback is not None:
            yield from self.fallback.stream(
                messages,
                schema=schema,
                max_tokens=max_tokens,
                timeout=max(0.1, deadline - time.monotonic()),
                cancel=cancel,
                sampling=sampling,
            )
            return
        raise self._unavailable(errors)

    def _stream_one(
        self,
        ep: RemoteEndpoint,
        messages: Messages,
        schema: dict[str, Any] | None,
        max_tokens: int,
        deadline: float,
        cancel: CancelToken,
        sampling: SamplingParams,
    ) -> Iterator[str]:
        body = self._body(ep, messages, schema, max_tokens, sampling, True)
        for attempt in range(2):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise GenerationTimeout("AI request timed out")
            try:
                with self._client.stream(
                    "POST",
                    f"{ep.url}/v1/chat/completions",
                    json=body,
                    headers=self._headers(ep),
                    timeout=httpx.Timeout(remaining, connect=self.connect_timeout),
                ) as r:
                    if r.status_code >= 400:
                        r.read()
                    if (
                        schema is not None
                        and ep.response_format == "json_schema"
                        and attempt == 0
                        and _rejects_json_schema(r)
                    ):
                        ep.response_format = "json_object"
                        body = self._body(ep, messages, schema, max_tokens, sampling, True)
                        continue
                    if r.status_code >= 400:
                        raise _EndpointFailure(f"{ep.name}: HTTP {r.status_code} {r.text[:200]}")
                    for line in r.iter_lines():
                        if cancel.cancelled:
                            raise Cancelled("AI request cancelled")
                        if time.monotonic() > deadline:
                            raise GenerationTimeout("AI request timed out")
                        if not line.startswith("data:"):
                            continue
                        data = line[5:].strip()
                        if data == "[DONE]":
                            return
                        try:
                            delta = json.loads(data)["choices"][0].get("delta", {})
                        except (ValueError, KeyError, IndexError) as exc:
                            raise _EndpointFailure(f"{ep.name}: malformed stream chunk") from exc
                        text = delta.get("content")
                        if text:
                            yield text
                    return
            except httpx.TimeoutException as exc:
                raise _EndpointFailure(f"{ep.name}: timeout") from exc
            except httpx.HTTPError as exc:
                raise _EndpointFailure(f"{ep.name}: {exc!r}") from exc


__all__ = ["AIError", "CircuitBreaker", "QueueFull", "RemoteEndpoint", "RemotePool"]
