"""Who runs the model process, where it listens, and how it comes back after a crash.

One model process serves the whole appliance, however many server processes there are: they share
the data directory's run directory (``<data dir>/run``). The server process that takes the lock
``run/model.lock`` (``flock``, released by the kernel when that process ends, however it ends) is
the owner: it starts the model process (:mod:`appliance.ai.process`) and restarts it with backoff
when it dies. Every server process, the owner included, is a client over the Unix socket
``run/model.sock`` (an abstract socket named after the run directory when that path is too long for
a socket address). A client that loses the model process tries the lock: when the owner itself died,
one of the others takes over.

Each start of the model process gets a fresh secret (``run/model.secret``, mode 0600, in the 0700
data directory): a client sends it first, and the model process also checks that the peer runs as
its own user (SO_PEERCRED). ``run/model.pid`` names the running model process (for the operator
and the tests).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from appliance import logs
from appliance.isolation import ENV_KEYS, PACKAGE_ROOT, program_command
from appliance.storage import files

from .process import HOST_ARG, frame

LOCK, SECRET, PID, SOCKET = "model.lock", "model.secret", "model.pid", "model.sock"
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 30.0  # seconds before a restart: doubled per crash in a row
STABLE = 60.0  # a model process that ran this long resets the backoff
STOP_GRACE = 10.0


def run_dir_of(data_dir: Path) -> Path:
    return data_dir / "run"


def address(run_dir: Path) -> str:
    """The socket address of the model process of `run_dir`."""
    path = str(run_dir / SOCKET)
    if len(path.encode()) < 100:  # sun_path holds 108 bytes
        return path
    return "\0appliance-model-" + hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:32]


def read_secret(run_dir: Path) -> str:
    """The current model process's secret; OSError when none is running."""
    return (run_dir / SECRET).read_text().strip()


def read_pid(run_dir: Path) -> int | None:
    try:
        return int((run_dir / PID).read_text())
    except (OSError, ValueError):
        return None


def try_own(run_dir: Path) -> int | None:
    """The lock's file descriptor when this process is now the owner; None when another holds it."""
    run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _write_private(path: Path, text: str) -> None:
    files.durable_write(path, text.encode("utf-8"), 0o600)


class ModelHost:
    """The owner's side: starts the model process, restarts it when it dies, stops it on close."""

    def __init__(self, run_dir: Path, options: dict[str, Any], lock_fd: int) -> None:
        self.run_dir = run_dir
        self._options = options
        self._lock_fd = lock_fd
        self._stopping = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._spawning = threading.Lock()  # stop() never misses a process being started
        self._started = threading.Event()  # the first start was tried
        self.restarts = 0
        self.failed_starts = 0  # the program could not be started at all (e.g. a missing executable)
        self._thread = threading.Thread(target=self._supervise, name="ai-model-host", daemon=True)
        self._thread.start()
        self._started.wait(30)

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def _spawn(self) -> subprocess.Popen[bytes]:
        secret = secrets.token_hex(32)
        _write_private(self.run_dir / SECRET, secret)
        argv, extra = program_command("appliance.ai.process", HOST_ARG)
        env = {**{k: v for k, v in os.environ.items() if k in ENV_KEYS}, **extra}
        proc = subprocess.Popen(  # a fresh program, never a fork of the threaded server
            [*argv], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, cwd=PACKAGE_ROOT,
            start_new_session=True,  # a terminal's Ctrl-C reaches the server, which stops it
        )
        assert proc.stdin is not None
        # its configuration on stdin (never argv or environment: other users can read those);
        # stdin stays open: its end of file tells the model process that we are gone
        proc.stdin.write(frame({"secret": secret, "address": address(self.run_dir), "engine": self._options}))
        proc.stdin.flush()
        _write_private(self.run_dir / PID, str(proc.pid))
        return proc

    def _supervise(self) -> None:
        backoff = BACKOFF_FIRST
        while not self._stopping.is_set():
            began = time.monotonic()
            try:
                with self._spawning:
                    if self._stopping.is_set():
                        break
                    self._proc = proc = self._spawn()
            except OSError as exc:
                logs.event("ai model process not started", level=40, error=exc.strerror or type(exc).__name__)
                self.failed_starts += 1
                self._started.set()
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            self._started.set()
            logs.event("ai model process started", pid=proc.pid, restarts=self.restarts)
            code = proc.wait()
            if self._stopping.is_set():
                break
            ran = time.monotonic() - began
            if ran >= STABLE:
                backoff = BACKOFF_FIRST
            # its requests have failed already (their connections closed): the clients said so
            logs.event("ai model process stopped", level=40, pid=proc.pid, code=code, seconds=round(ran, 1),
                       restart_in=backoff)
            self.restarts += 1
            self._stopping.wait(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)

    def stop(self) -> None:
        """Stop the model process (its stdin closes: it exits; killed after STOP_GRACE) and give up
        the lock. Idempotent."""
        if self._stopping.is_set():
            return
        with self._spawning:
            self._stopping.set()
            proc = self._proc
        if proc is not None:
            with contextlib.suppress(OSError):
                assert proc.stdin is not None
                proc.stdin.close()
            try:
                proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._thread.join(STOP_GRACE)
        for name in (SECRET, PID, SOCKET):
            with contextlib.suppress(FileNotFoundError):
                (self.run_dir / name).unlink()
        os.close(self._lock_fd)
