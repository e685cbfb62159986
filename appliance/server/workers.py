"""`appliance serve --workers N`: N server processes on one port, one data directory.

The supervisor (the process the operator started) binds the listening socket once and starts N
worker processes that inherit it (the kernel hands each new connection to one of the processes
waiting in accept). Each worker opens its own runtime: its own database connections, readers and
writer threads, and serves HTTP only (`server.serve` with the inherited socket).

What several processes share, and how it stays safe:
- writes: one writer at a time per database file across processes (the `flock` of
  storage.database around every writer transaction, besides SQLite's own locking);
- the audit log stays one hash chain: every entry reads the previous hash inside its writer
  transaction; the supervisor anchors the head (`audit.head`), the workers do not;
- revocations and entitlement changes: each worker's key cache (workspaces.keycache) checks the
  control database's data_version on every request;
- background services (webhook delivery, change shipping and snapshots, retention, the space
  reserve, the head anchor) run once, in the supervisor (server.serve.start_background);
- the rate limit and the /metrics counters are shared through memory-mapped files (server.shared);
- `appliance keys rekey`: the supervisor answers the CLI's request (Supervisor.rekey): it stops
  the workers gracefully (requests in flight finish; new connections wait in the listening
  socket's backlog, which the supervisor keeps open), rekeys the database on its own connection,
  and starts the workers again, which open it with the new key. Nothing is refused; requests
  made meanwhile wait for the new workers to start;
- a job's progress events and its cancel reach it through any worker (the environment
  database's job_events and jobs.cancel_requested: ai.jobs, server.sse);
- the AI model runs in its own process, owned by the supervisor and shared by every worker
  (ai.jobs.start_model_process, ai.model_host); the AI jobs a stop
  interrupted are picked up by the first worker only, at the supervisor's start.

A worker that dies (a crash, kill -9) is started again; what it acknowledged was committed before
the answer left (the writer commits before the response starts), so nothing acknowledged is lost.
The AI jobs it held are failed at once, their records saying why (ai.jobs.fail_jobs_of), rather
than staying `running` until the next supervisor start. A worker that keeps dying soon after its
start is started again after a growing pause (RestartBackoff), not every second.
SIGTERM/SIGINT to the supervisor stops every worker gracefully, then the background services.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from appliance import logs
from appliance.ai.jobs import fail_jobs_of, start_model_process
from appliance.ai.model_host import run_dir_of
from appliance.runtime import Runtime
from appliance.server import shared
from appliance.server.serve import start_background
from appliance.server.shared import jobs_file, server_dir

# "<index>:<listening socket fd>:<1 if restarted>", set for worker processes only
WORKER_ENV = "_APPLIANCE_SERVE_WORKER"
RESTART_PAUSE = 1.0  # seconds before a dead worker is started again
RESTART_MAX = 30.0  # the longest pause, for a worker that dies again and again soon after its start
STABLE_AFTER = 10.0  # a worker that lived this long died of something new: the pause starts over
STOP_GRACE = 30.0  # uvicorn's own graceful shutdown is 20 s


def default_workers() -> int:
    """The number of cores this process may run on."""
    return max(1, len(os.sched_getaffinity(0)))


def worker_count(asked: int | None) -> int:
    """`serve --workers N`: N; unset or 0, one per core this process may run on."""
    return asked if asked else default_workers()


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def worker_socket() -> tuple[socket.socket, bool, int] | None:
    """In a worker process: the inherited listening socket, whether this worker picks up the
    AI jobs a stop interrupted (the first worker's first start only: a restarted worker would fail
    the jobs the others are running), and its index. None in any other process."""
    value = os.environ.pop(WORKER_ENV, None)
    if not value:
        return None
    index, fd, restarted = value.split(":")
    return socket.socket(fileno=int(fd)), index == "0" and restarted == "0", int(index)


def worker_command(argv: list[str]) -> list[str]:
    """This program again (the one-file binary, or `python -m appliance` from source)."""
    if getattr(sys, "frozen", False):
        return [sys.executable, *argv]
    return [sys.executable, "-m", "appliance", *argv]


@dataclass
class RestartBackoff:
    """The pause before a dead worker is started again: RESTART_PAUSE after a worker that ran for
    STABLE_AFTER seconds or more, doubled for each further exit within STABLE_AFTER of its start
    (1, 2, 4, ... s), at most RESTART_MAX: a worker that cannot start (a broken disk, a bad
    certificate) does not spin the machine, and a one-off crash is repaired within a second."""

    quick_exits: int = 0

    def pause(self, lived: float) -> float:
        self.quick_exits = self.quick_exits + 1 if lived < STABLE_AFTER else 0
        return min(RESTART_MAX, RESTART_PAUSE * float(2 ** max(0, self.quick_exits - 1)))


class Supervisor:
    def __init__(self, runtime: Runtime, argv: list[str], workers: int, passphrase: str | None) -> None:
        self.runtime = runtime
        self.argv = argv  # `serve` and its options for a worker (host, port, TLS, public URL)
        self.count = workers
        self.passphrase = passphrase
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.started: dict[int, float] = {}  # when each worker was started (time.monotonic)
        self.backoff: dict[int, RestartBackoff] = {}
        self.due: dict[int, float] = {}  # dead workers and when they are started again
        self.stopping = False
        self.sock: socket.socket | None = None
        # held while workers are (re)started or stopped: a rekey and the restart of a dead worker
        self._workers_lock = threading.Lock()

    def _start(self, index: int, sock: socket.socket, *, restarted: bool = False) -> None:
        env = {**os.environ, WORKER_ENV: f"{index}:{sock.fileno()}:{int(restarted)}"}
        argv = [*self.argv, "--workers", "1"]
        if self.passphrase is not None:
            argv.append("--passphrase-stdin")
        proc = subprocess.Popen(
            worker_command(argv),
            env=env,
            pass_fds=(sock.fileno(),),
            stdin=subprocess.PIPE if self.passphrase is not None else subprocess.DEVNULL,
        )
        if self.passphrase is not None and proc.stdin is not None:
            proc.stdin.write(self.passphrase.encode() + b"\n")
            proc.stdin.close()
        self.procs[index] = proc
        self.started[index] = time.monotonic()
        self.due.pop(index, None)
        logs.event("worker started", worker=index, pid=proc.pid)

    def run(self, host: str, port: int, scheme: str) -> None:
        settings = self.runtime.settings
        logs.setup(settings.log.level)
        sock = self.sock = listening_socket(host, port)
        received: list[int] = []

        def on_signal(number: int, _frame: object) -> None:
            received.append(number)
            self.stopping = True

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, on_signal)
        shared.reset(run_dir_of(self.runtime.data_dir))  # the rate limit and counters start afresh
        stop_background = start_background(self.runtime, rekey=self.rekey)
        model = start_model_process(self.runtime)  # one model process, owned here: workers are its clients
        try:
            for index in range(self.count):
                self._start(index, sock)
            logs.event(
                "listening", url=f"{scheme}://{host}:{port}", data_dir=str(self.runtime.data_dir), workers=self.count
            )
            while not self.stopping:
                time.sleep(0.2)
                with self._workers_lock:
                    self._tend(sock)
        finally:
            with self._workers_lock:
                self._stop_workers()
            if model is not None:
                model.stop()
            sock.close()
            stop_background()
            self.runtime.close()
            logs.event("stopped", signals=received)

    def _tend(self, sock: socket.socket) -> None:
        """Notice dead workers (fail their AI jobs, schedule their restart) and start those due."""
        now = time.monotonic()
        for index, proc in list(self.procs.items()):
            code = proc.poll()
            if code is None or index in self.due or self.stopping:
                continue
            reason = f"interrupted: the server process running it stopped (exit code {code}); start it again"
            try:
                failed = fail_jobs_of(self.runtime, jobs_file(server_dir(run_dir_of(self.runtime.data_dir)), proc.pid),
                                      reason)
            except Exception as exc:  # a full disk: the next supervisor start fails them (AIService.recover)
                logs.event("jobs of a dead worker not failed", level=40, worker=index, error=type(exc).__name__)
                failed = 0
            pause = self.backoff.setdefault(index, RestartBackoff()).pause(now - self.started.get(index, now))
            self.due[index] = now + pause
            logs.event("worker exited; starting it again", level=30, worker=index, code=code,
                       pause=pause, failed_jobs=failed)
        for index, when in list(self.due.items()):
            if now >= when and not self.stopping:
                self._start(index, sock, restarted=True)

    def rekey(self, name: str) -> float:
        """The CLI's rekey request (`appliance keys rekey`, via storage.rotation.request): each
        worker holds the database open with the old key, and a file re-encrypted under it would
        fail their next read. So: the workers stop gracefully, this process rekeys the database on
        its own connection (rotation.rekey: the keyring gets the new key), and the workers start
        again with it. Connections made meanwhile wait in the listening socket's backlog."""
        assert self.sock is not None, "rekey before the supervisor runs"
        with self._workers_lock:
            self._stop_workers()
            logs.event("workers stopped for a rekey", database=name)
            try:
                return self.runtime.rekey(name)
            finally:
                if not self.stopping:
                    for index in range(self.count):
                        self._start(index, self.sock, restarted=True)

    def _stop_workers(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def supervise(
    runtime: Runtime, argv: list[str], host: str, port: int, workers: int, passphrase: str | None, tls: bool
) -> None:
    Supervisor(runtime, argv, workers, passphrase).run(host, port, "https" if tls else "http")
