"""The delivery worker: sends due outbox rows, signs them, retries with backoff, logs every attempt.

One poller thread walks every workspace environment database, picks `pending` rows whose
`next_attempt` has come, and hands them to a small thread pool that POSTs them with httpx. The
result of each attempt is written in one transaction (attempt row + outbox row). A row is marked
delivered only after a 2xx, so a crash or restart mid-attempt means the same delivery (same
`X-Coassemble-Delivery` id and body) is sent again: at-least-once, receivers dedupe by the id.

Connections: no redirects, no proxies from the environment, TLS verified against the system store
plus `webhooks.ca_file`, and every connection goes to an address the allowlist check just approved
(`GuardedBackend`), so DNS cannot swap in another host between check and connect.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpcore
import httpx
import sqlite_utils

from appliance import __version__, logs
from appliance.config import WebhookSettings
from appliance.security.audit import now_iso
from appliance.storage.database import Database
from appliance.webhooks import outbox
from appliance.webhooks.allow import AllowList, NotAllowed, check_url
from appliance.webhooks.signer import sign

if TYPE_CHECKING:
    from appliance.runtime import Runtime

USER_AGENT = f"Coassemble-Appliance-Webhooks/{__version__}"
RESCAN_SECONDS = 30.0
PRUNE_SECONDS = 3600.0


class GuardedBackend(httpcore.SyncBackend):
    """Resolve, check against the allowlist, and connect to the checked address only."""

    def __init__(self, allow: AllowList) -> None:
        self.allow = allow

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        last: Exception | None = None
        for address in self.allow.addresses(host, port):  # raises NotAllowed
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last = exc
        assert last is not None
        raise last


class _ResponseStream(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class GuardedTransport(httpx.BaseTransport):
    """httpx transport over an httpcore pool that uses `GuardedBackend` (HTTP/1.1, no proxy)."""

    def __init__(self, allow: AllowList, ssl_context: ssl.SSLContext, connections: int) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=connections,
            max_keepalive_connections=connections,
            keepalive_expiry=30.0,
            http1=True,
            http2=False,
            retries=0,
            network_backend=GuardedBackend(allow),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        response = self._pool.handle_request(
            httpcore.Request(
                method=request.method,
                url=httpcore.URL(
                    scheme=request.url.raw_scheme,
                    host=request.url.raw_host,
                    port=request.url.port,
                    target=request.url.raw_path,
                ),
                headers=request.headers.raw,
                content=request.stream,
                extensions=request.extensions,
            )
        )
        assert isinstance(response.stream, Iterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()


def client_context(ca_file: str = "") -> ssl.SSLContext:
    """System trust store (TLS 1.2+, hostname checked) plus the operator's internal CA, if any."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


def describe(exc: BaseException, timeout: float) -> str:
    """An attempt's error for the delivery log: what went wrong, never a secret."""
    if isinstance(exc, NotAllowed):
        return f"destination not allowed: {exc}"
    if isinstance(exc, httpcore.TimeoutException | httpx.TimeoutException | TimeoutError):
        return f"timed out after {timeout:g} s ({type(exc).__name__})"
    if isinstance(exc, httpcore.ConnectError | httpx.ConnectError):
        return f"connection failed: {exc}"[:300]
    return f"{type(exc).__name__}: {exc}"[:300]


@dataclass(frozen=True)
class Due:
    outbox_id: int
    delivery_id: str
    event: str
    body: str
    url: str
    secret: str


@dataclass
class Attempt:
    status_code: int | None
    error: str | None
    duration_ms: float


def guarded_client(settings: WebhookSettings, allow: AllowList, connections: int) -> httpx.Client:
    """An outbound client for operator-configured endpoints (webhooks, LRSs): only to allowed
    addresses (checked at connect time), no redirects, no proxy from the environment."""
    return httpx.Client(
        transport=GuardedTransport(allow, client_context(settings.ca_file), connections),
        timeout=httpx.Timeout(settings.timeout_seconds),
        follow_redirects=False,
        trust_env=False,
    )


class Sender:
    """Sends one delivery attempt: sign, POST, classify. Thread-safe (one shared client)."""

    def __init__(self, settings: WebhookSettings) -> None:
        self.settings = settings
        self.allow = AllowList.parse(settings.allow_hosts)
        self.client = guarded_client(settings, self.allow, settings.concurrency)

    def send(self, due: Due) -> Attempt:
        body = due.body.encode()
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Coassemble-Event": due.event,
            "X-Coassemble-Delivery": due.delivery_id,
            "X-Coassemble-Timestamp": str(timestamp),
            "X-Coassemble-Signature": sign(due.secret, timestamp, body),
        }
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        try:
            check_url(due.url, self.allow, allow_http=self.settings.allow_http)
            with self.client.stream("POST", due.url, content=body, headers=headers) as response:
                status = response.status_code
            if 300 <= status < 400:
                error = f"HTTP {status}: redirects are not followed"
        except Exception as exc:
            error = describe(exc, self.settings.timeout_seconds)
        return Attempt(status, error, (time.perf_counter() - started) * 1000)

    def close(self) -> None:
        self.client.close()


def due_rows(r: sqlite_utils.Database, limit: int, skip: set[int]) -> list[Due]:
    rows = r.execute(
        "SELECT o.id, o.delivery_id, o.event, o.body, e.url, e.secret FROM webhook_outbox o"
        " JOIN webhook_endpoints e ON e.id = o.endpoint_id"
        " WHERE o.status = 'pending' AND o.next_attempt <= ? ORDER BY o.next_attempt, o.id LIMIT ?",
        [now_iso(), limit + len(skip)],
    ).fetchall()
    return [Due(*row) for row in rows if row[0] not in skip][:limit]


class DeliveryWorker:
    """Started by the server next to uvicorn; `stop()` lets in-flight attempts finish first."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings.webhooks
        self.sender = Sender(self.settings)
        # httpx logs every request line with its full URL; receiver URLs may carry partners' tokens
        logging.getLogger("httpx").setLevel(logging.WARNING)
        self._pool = ThreadPoolExecutor(self.settings.concurrency, thread_name_prefix="webhook")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)
        self._inflight: dict[str, set[int]] = {}
        self._lock = threading.Lock()
        self._rescan_at = 0.0
        self._prune_at = 0.0
        self._broken: set[tuple[int, str]] = set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        outbox.wake()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        # in-flight attempts end within the HTTP timeout and record their outcome
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.sender.close()

    # -- the poller ----------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as exc:
                logs.event("webhook poll failed", level=logging.ERROR, error=type(exc).__name__)
            if self._stop.is_set():
                break
            outbox.wait_for_work(self.settings.poll_seconds)

    def _open_all(self) -> None:
        """Open every environment database, so pending rows are found after a restart."""
        for ws, env in self.runtime.environment_ids():
            try:
                self.runtime.environment(ws, env)
            except Exception as exc:
                if (ws, env) not in self._broken:  # say it once, not every scan
                    self._broken.add((ws, env))
                    logs.event(
                        "webhooks: cannot open environment",
                        level=logging.ERROR,
                        workspace=ws,
                        environment=env,
                        error=type(exc).__name__,
                    )

    def poll_once(self) -> int:
        """Hand every due row (up to the free slots) to the pool; returns how many were started."""
        if not self.runtime.disk.writable():
            return 0  # the disk is full: an attempt's outcome could not be recorded, so none is made
        now = time.monotonic()
        if now >= self._rescan_at:
            self._open_all()
            self._rescan_at = now + RESCAN_SECONDS
        prune = now >= self._prune_at
        if prune:
            self._prune_at = now + PRUNE_SECONDS
        started = 0
        for database in self.runtime.open_environments():
            if self._stop.is_set():
                break
            if prune:
                database.submit(lambda w: outbox.prune(w, self.settings.retention_days))
            with self._lock:
                busy = self._inflight.setdefault(database.name, set())
                free = self.settings.concurrency * 2 - sum(len(s) for s in self._inflight.values())
                if free <= 0:
                    break
                rows = due_rows(database.read(), free, busy)
                busy.update(row.outbox_id for row in rows)
            for row in rows:
                self._pool.submit(self._deliver, database, row)
                started += 1
        return started

    # -- one attempt ---------------------------------------------------------------------------
    def _deliver(self, database: Database, due: Due) -> None:
        try:
            attempt = self.sender.send(due)
            settings = self.settings

            def job(w: sqlite_utils.Database) -> str | None:
                return outbox.record_attempt(
                    w,
                    due.outbox_id,
                    status_code=attempt.status_code,
                    error=attempt.error,
                    duration_ms=attempt.duration_ms,
                    max_attempts=settings.max_attempts,
                    backoff_base=settings.backoff_base_seconds,
                    backoff_max=settings.backoff_max_seconds,
                )

            status = database.write(job)
            logs.event(
                "webhook attempt",
                level=logging.INFO if status == outbox.DELIVERED else logging.WARNING,
                database=database.name,
                delivery=due.delivery_id,
                event=due.event,
                status_code=attempt.status_code,
                error=attempt.error,
                outcome=status,
                ms=round(attempt.duration_ms, 1),
            )
        except Exception as exc:  # e.g. the database closed during shutdown: the row stays pending
            logs.event(
                "webhook attempt not recorded",
                level=logging.ERROR,
                delivery=due.delivery_id,
                error=type(exc).__name__,
            )
        finally:
            with self._lock:
                self._inflight.get(database.name, set()).discard(due.outbox_id)
            outbox.wake()
