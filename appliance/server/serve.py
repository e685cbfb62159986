"""Run the server with uvicorn (uvloop + httptools), over HTTP or TLS 1.2+."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn
import uvloop

from appliance import logs
from appliance.ai.jobs import AIService
from appliance.ai.model_host import run_dir_of
from appliance.backup.service import start_backup_service
from appliance.courses.retention import RetentionWorker
from appliance.documents import sandbox
from appliance.lti.grades import GradeWorker
from appliance.runtime import Runtime
from appliance.server.app import create_app
from appliance.server.shared import jobs_file
from appliance.server.shared import server_dir as shared_dir
from appliance.server.tls import server_context
from appliance.storage import rotation
from appliance.webhooks.worker import DeliveryWorker
from appliance.xapi import install as install_xapi
from appliance.xapi.worker import LrsWorker


class _TLSConfig(uvicorn.Config):
    """uvicorn builds its own SSL context; replace it with ours (explicit TLS floor)."""

    def __init__(self, *args: Any, tls: tuple[Path, Path, str] | None = None, **kwargs: Any) -> None:
        self._tls = tls
        super().__init__(*args, **kwargs)

    def load(self) -> None:
        super().load()
        if self._tls is not None:
            self.ssl = server_context(*self._tls)


def start_background(runtime: Runtime, rekey: Callable[[str], float] | None = None) -> Callable[[], None]:
    """Start what runs once per data directory, not once per server process: the disk's space
    reserve, the audit head anchor, webhook delivery, change shipping and snapshots, the CLI's
    rekey requests, retention. Returns the function that stops them (before the databases close).

    `rekey`: how the CLI's rekey request is carried out, by database name; by default this
    process rekeys its own connections (runtime.rekey). The supervisor of several workers passes
    its own (server.workers.Supervisor.rekey: the workers hold the old key)."""
    runtime.disk.prepare()  # the space reserve the audit log falls back on when the disk fills
    runtime.audit.start_anchoring()
    webhooks = DeliveryWorker(runtime)  # sends the durable outbox; stopped before the databases close
    webhooks.start()
    lrs = LrsWorker(runtime)  # sends the xAPI outbox to the operators' LRSs (appliance.xapi)
    lrs.start()
    rekey_with = rekey or runtime.rekey

    def rekey_named(name: str) -> float:
        seconds = rekey_with(name)
        runtime.admin_event("keys rekey", target=name)  # the CLI asked; the server did it
        return seconds

    # change shipping, snapshots, and the CLI's rekey requests (only this process can rekey its databases)
    backup = start_backup_service(runtime.backups, [lambda: rotation.handle_requests(runtime.data_dir, rekey_named)])
    retention = RetentionWorker(runtime)  # erases soft-deleted courses after storage.purge_deleted_courses_days
    retention.start()
    grades = GradeWorker(runtime)  # LTI grade passback (appliance.lti.grades): sends the lti_outbox
    grades.start()

    def stop() -> None:
        webhooks.stop()
        lrs.stop()
        retention.stop()
        grades.stop()
        backup.stop()  # ships what is left after the last request

    return stop


def serve(
    runtime: Runtime,
    host: str,
    port: int,
    tls: tuple[Path, Path] | None = None,
    *,
    sock: socket.socket | None = None,
    recover_jobs: bool = True,
    worker: int = 0,
) -> None:
    """Serve until SIGTERM/SIGINT. Alone (`sock` None) this process also runs the background
    services; as one of `serve --workers N` (server.workers) it serves the listening socket its
    supervisor made, and the supervisor runs them. `recover_jobs`: whether this process picks up
    the AI jobs a stop interrupted (one process of the appliance must, only one may); `worker`
    is its index, which names its metrics file (server.shared)."""
    settings = runtime.settings
    logs.setup(settings.log.level)
    # The event loop thread shares the GIL with the database writer, AI and backup threads; every
    # SQLite call releases it, and getting it back can take a whole switch interval (5 ms by
    # default). 0.5 ms measured +10% requests/s on GET /v1/headless/courses (docs/operations.md).
    sys.setswitchinterval(0.0005)
    # the workers of `serve --workers N` share the rate limit and the metrics (server.shared)
    shared = (shared_dir(run_dir_of(runtime.data_dir)), worker) if sock is not None else None
    # the model loads in the background; /health answers 503 until it is ready. A worker lists the
    # jobs it holds for its supervisor, which fails them if the worker dies (server.workers)
    ai = AIService(runtime, owner_file=jobs_file(shared[0], os.getpid()) if shared is not None else None)
    app = create_app(runtime, ai, shared)
    install_xapi(settings.base_url)  # this process's learner writes queue xAPI statements
    config = _TLSConfig(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=20,
        tls=(*tls, settings.server.tls_min_version) if tls else None,
        # uvicorn only enables TLS when it is given a certificate; ours replaces its context in load()
        ssl_certfile=str(tls[0]) if tls else None,
        ssl_keyfile=str(tls[1]) if tls else None,
    )
    server = uvicorn.Server(config)
    # What start-up made (the app, routes, schemas, imported modules) lives as long as the process:
    # moved out of the collector's generations, it is not walked again by every collection a
    # request's allocations trigger (measured in docs/performance.md).
    gc.collect()
    gc.freeze()
    if sock is None:
        stop_background = start_background(runtime)
    else:
        runtime.audit.anchors = False  # the supervisor anchors the head all workers share
        stop_background = _nothing
    ai.start(recover=recover_jobs)
    sandbox.prestart()  # a document reader waits for the first upload (its start-up is not on the clock)
    scheme = "https" if tls else "http"
    logs.event("listening", url=f"{scheme}://{host}:{port}", data_dir=str(runtime.data_dir), pid=os.getpid())
    # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown, which would kill the process
    # before the cleanup below; with this handler in place the re-raised signal is only noted
    received: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda number, _frame: received.append(number))
    try:
        # asyncio.run would make a plain asyncio loop: uvicorn's loop="uvloop" only applies inside its
        # own run(). The profile in docs/performance.md showed the selector loop on the hot path.
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(server.serve(sockets=[sock] if sock is not None else None))
    finally:
        ai.stop()  # cancels running jobs; their records say so
        sandbox.SPARE.discard()
        stop_background()
        runtime.close()
        logs.event("stopped", signals=received)


def _nothing() -> None:
    return None
