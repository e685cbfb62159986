"""The model process: the on-box engine (:class:`~appliance.ai.local.LocalEngine`, unchanged) in a
program of its own, so that the scheduler's per-token Python work does not share the API's GIL and a
crash inside llama.cpp cannot stop the API (docs/ai.md, "Model process").

The program is started by :mod:`appliance.ai.model_host` (``python -m appliance.ai.process``, or the
binary with the hidden first argument ``_model-host``). It reads one frame on stdin (its secret, the
address to listen on, the engine's options), listens on that Unix socket and serves the clients of
:mod:`appliance.ai.process_engine`, one connection per request. When its stdin reaches end of file
(the server that started it is gone, however it went) it exits at once.

It gets nothing it does not need: no keyring, no database, no settings file, a minimal environment;
its network is taken away (a network namespace of its own, with only a loopback that is down) when
the kernel allows it, after its socket is bound; ``info()["network"]`` says which.

Wire format, both ways: a 4-byte big-endian length, then a msgpack map (plain data, never pickle).
A client's first frame carries the secret and ``op``: ``info`` (one answer), ``watch`` (the engine's
info now and every second: the clients' status and their notice that the process died) or ``run``
(one request: ``kind`` ``stream``, ``json`` or ``complete``). A run is answered by ``accepted``, then
``chunk`` frames and ``done`` (``stream``/``complete``), or by ``value`` (``json``), or by ``error``
(the error's class name, message and ``retry_after``). The client may send ``cancel``; its closing the
connection early cancels too.
"""

from __future__ import annotations

import ctypes
import dataclasses
import hmac
import os
import signal
import socket
import struct
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import msgspec

from .engine import CancelToken, EngineStatus, SamplingParams

HOST_ARG = "_model-host"  # the binary's hidden first argument (build/binary.sh's entry script)
MAX_FRAME = 64 * 1024 * 1024
HEARTBEAT = 1.0  # seconds between two info frames on a watch connection
_HEAD = struct.Struct(">I")
_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(dict[str, Any])


class ProtocolError(Exception):
    """A frame that is not ours (too long, not a msgpack map)."""


def frame(message: dict[str, Any]) -> bytes:
    body = _ENCODER.encode(message)
    return _HEAD.pack(len(body)) + body


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(frame(message))


def read_frame(stream: IO[bytes]) -> dict[str, Any] | None:
    """The next frame of a buffered stream; None at end of file (also in the middle of a frame)."""
    head = stream.read(_HEAD.size)
    if len(head) < _HEAD.size:
        return None
    (size,) = _HEAD.unpack(head)
    if size > MAX_FRAME:
        raise ProtocolError(f"frame of {size} bytes")
    body = stream.read(size)
    if len(body) < size:
        return None
    try:
        return _DECODER.decode(body)
    except msgspec.DecodeError as exc:
        raise ProtocolError(str(exc)) from None


def error_frame(exc: BaseException) -> dict[str, Any]:
    """An error as data: the client raises the class of the same name (appliance.ai.errors)."""
    return {"op": "error", "type": type(exc).__name__, "message": str(exc)[:2000],
            "retry_after": getattr(exc, "retry_after", None)}


def peer_credentials(conn: socket.socket) -> tuple[int, int]:
    """(pid, uid) of the process at the other end of a Unix socket (the kernel's word, SO_PEERCRED)."""
    pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    return pid, uid


class _Owners:
    """One child-side cancel token per caller's token: the engine counts requests that share a token
    (all calls of one AI job) as one caller for fairness, as it does in-process; a cancel of any of
    them cancels the token they share, as it does in-process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[tuple[int, int], tuple[CancelToken, int]] = {}

    def acquire(self, key: tuple[int, int]) -> CancelToken:
        with self._lock:
            token, refs = self._tokens.get(key, (None, 0))
            if token is None or token.cancelled:
                token, refs = CancelToken(), 0
            self._tokens[key] = (token, refs + 1)
            return token

    def release(self, key: tuple[int, int], token: CancelToken) -> None:
        with self._lock:
            held, refs = self._tokens.get(key, (None, 0))
            if held is token:
                if refs <= 1:
                    del self._tokens[key]
                else:
                    self._tokens[key] = (held, refs - 1)


class Host:
    """Serves one engine to the clients that know the secret and run as our user."""

    def __init__(self, engine: Any, secret: str, network: str) -> None:
        self.engine = engine
        self._secret = secret
        self.network = network
        self._owners = _Owners()

    def info(self) -> dict[str, Any]:
        return {**self.engine.info(), "pid": os.getpid(), "network": self.network}

    def serve(self, conn: socket.socket) -> None:
        try:
            pid, uid = peer_credentials(conn)
            if uid != os.getuid():
                return
            reader = conn.makefile("rb")
            msg = read_frame(reader)
            if msg is None:
                return
            if not hmac.compare_digest(str(msg.get("secret", "")).encode(), self._secret.encode()):
                send(conn, {"op": "error", "type": "EngineUnavailable", "message": "refused", "retry_after": 1})
                return
            op = msg.get("op")
            if op == "info":
                send(conn, {"op": "info", "info": self.info()})
            elif op == "watch":
                self._watch(conn)
            elif op == "run":
                self._run(conn, reader, pid, msg)
        except (OSError, ProtocolError):
            return  # the client went away or spoke nonsense: its requests are cancelled below
        finally:
            conn.close()

    def _watch(self, conn: socket.socket) -> None:
        while True:
            send(conn, {"op": "info", "info": self.info()})
            if self.engine.status() == EngineStatus.LOADING:
                self.engine.wait_ready(HEARTBEAT)
            else:
                time.sleep(HEARTBEAT)

    def _run(self, conn: socket.socket, reader: IO[bytes], pid: int, msg: dict[str, Any]) -> None:
        key = (pid, int(msg.get("owner", 0)))
        token = self._owners.acquire(key)
        ended = threading.Event()

        def listen() -> None:  # the client's cancel, or its going away, cancels the request
            try:
                while (m := read_frame(reader)) is not None and m.get("op") != "cancel":
                    pass
            except (OSError, ProtocolError):
                pass  # a broken connection is a client gone: cancelled below
            if not ended.is_set():
                token.cancel()

        threading.Thread(target=listen, name="ai-model-listen", daemon=True).start()
        try:
            self._answer(conn, msg, token, ended)
        finally:
            ended.set()
            self._owners.release(key, token)

    def _answer(self, conn: socket.socket, msg: dict[str, Any], token: CancelToken, ended: threading.Event) -> None:
        kind = msg.get("kind")
        options: dict[str, Any] = {
            "max_tokens": int(msg["max_tokens"]), "timeout": msg.get("timeout"), "cancel": token,
            "sampling": SamplingParams(**msg.get("sampling", {})),
        }
        try:
            if kind == "json":
                value = self.engine.generate_json(msg["messages"], msg["schema"], **options)
                ended.set()
                send(conn, {"op": "value", "value": value})
                return
            chunks = self.engine.stream(msg["messages"], schema=msg.get("schema"), **options)
        except Exception as exc:  # the engine's refusal (busy, unavailable, bad schema): the caller's error
            ended.set()
            send(conn, error_frame(exc))
            return
        try:
            send(conn, {"op": "accepted"})
            while True:
                try:
                    chunk = next(chunks)
                except StopIteration as stop:
                    stats = stop.value
                    break
                send(conn, {"op": "chunk", "text": chunk})
            ended.set()
            send(conn, {"op": "done", "stats": _stats(stats) if kind == "complete" else {}})
        except OSError:
            raise  # the client is gone: closing the stream (below) cancels the request
        except Exception as exc:  # the engine's error for this request
            ended.set()
            send(conn, error_frame(exc))
        finally:
            chunks.close()


def _stats(stats: Any) -> dict[str, Any]:
    if not dataclasses.is_dataclass(stats):
        return {}
    return {f.name: getattr(stats, f.name) for f in dataclasses.fields(stats) if not f.name.startswith("_")}


def drop_network() -> str:
    """Leave the network: a network namespace of our own (its loopback is down, nothing is reachable).
    Needs a single-threaded process; unprivileged, a user namespace that maps our own ids comes with
    it. Best effort: "none" when done, "shared" when the kernel refused (the operator sees which)."""
    if not sys.platform.startswith("linux"):
        return "shared"
    libc = ctypes.CDLL(None, use_errno=True)
    clone_newuser, clone_newnet = 0x10000000, 0x40000000
    uid, gid = os.getuid(), os.getgid()
    if uid == 0:
        return "none" if libc.unshare(clone_newnet) == 0 else "shared"
    if libc.unshare(clone_newuser | clone_newnet) != 0:
        return "shared"
    try:  # map our ids onto themselves, so that files and peer credentials keep meaning us
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
    except OSError:
        return "none"  # the namespace is made; without the map our files look foreign, the network is gone
    return "none"


def _bind(address: str) -> socket.socket:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if address.startswith("\0"):
        listener.bind(address)
    else:
        try:
            os.unlink(address)  # a previous model process's socket (its owner holds the lock: ours)
        except FileNotFoundError:
            pass
        listener.bind(address)
        os.chmod(address, 0o600)
    listener.listen(64)
    return listener


def _exit_with_parent() -> None:
    """The server keeps our stdin open; end of file means it is gone: so are we."""
    while sys.stdin.buffer.read(65536):
        pass
    os._exit(0)


def child_entry() -> int:
    """`python -m appliance.ai.process`, or `appliance _model-host` in the binary."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server stops us (stdin), not the terminal
    config = read_frame(sys.stdin.buffer)
    if config is None:
        return 2
    listener = _bind(str(config["address"]))
    network = drop_network()  # before any thread starts (the engine's): unshare needs one thread
    from .local import LocalEngine  # after the unshare: importing llama.cpp may start threads

    options = dict(config["engine"])
    if options.get("models_dir"):
        options["models_dir"] = Path(options["models_dir"])
    engine = LocalEngine(**options)
    threading.Thread(target=_exit_with_parent, name="ai-model-parent", daemon=True).start()
    host = Host(engine, str(config["secret"]), network)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=host.serve, args=(conn,), name="ai-model-conn", daemon=True).start()


if __name__ == "__main__":
    raise SystemExit(child_entry())
