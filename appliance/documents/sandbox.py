"""Run extraction in a child process with a deadline and a memory cap.

A hostile file (a PDF whose streams inflate without end, a parser trap that loops) can then cost at
most one child process: after `timeout` seconds it is killed and the upload gets a clear 422, and the
server, its model and its other requests carry on. The child is a fresh interpreter
(`python -m appliance.documents.sandbox`), never a fork of the multi-threaded server; it gets the
file on stdin and answers with JSON on stdout (plain data: a compromised child cannot make the
server run anything, as it could with pickle).
"""

from __future__ import annotations

import json
import os
import struct
import sys
import threading
from dataclasses import asdict
from typing import Any

from appliance.documents.extract import Block, DocumentError, Extracted, Limits, extract
from appliance.isolation import ChildNotStarted, ChildTimeout, run_isolated

MAX_ANSWER = 64 * 1024 * 1024


PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _in_thread(data: bytes, filename: str, limits: Limits, timeout: float) -> Extracted:
    """The one-file binary cannot start `python -m`: read in a thread with the same deadline (the
    request is answered in time; a stuck reader thread is abandoned, without a memory cap)."""
    outcome: list[Any] = []

    def work() -> None:
        try:
            outcome.append(extract(data, filename, limits))
        except DocumentError as exc:
            outcome.append(exc)
        except Exception:
            outcome.append(DocumentError(422, "The document is damaged or malformed and could not be read"))

    thread = threading.Thread(target=work, name="document-reader", daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome:
        raise DocumentError(422, f"Reading the document took longer than {timeout:g} seconds; it was stopped")
    if isinstance(outcome[0], DocumentError):
        raise outcome[0]
    result: Extracted = outcome[0]
    return result


def extract_isolated(
    data: bytes, filename: str, limits: Limits, *, timeout: float, memory_mb: int = 1024
) -> Extracted:
    """`extract()` in a child process; raises DocumentError (422 on timeout or a crashed child)."""
    if getattr(sys, "frozen", False):
        return _in_thread(data, filename, limits, timeout)
    header = json.dumps({"filename": filename, "limits": asdict(limits), "memory_mb": memory_mb}).encode()
    try:
        done = run_isolated(  # cwd: the child imports this package from where the server did
            [sys.executable, "-m", "appliance.documents.sandbox"],
            struct.pack(">I", len(header)) + header + data,
            timeout=timeout,
            cwd=PACKAGE_ROOT,
        )
    except ChildTimeout:
        raise DocumentError(422, f"Reading the document took longer than {timeout:g} seconds; it was stopped") from None
    except ChildNotStarted:
        raise DocumentError(503, "The document reader could not be started; retry shortly") from None
    try:
        answer: dict[str, Any] = json.loads(done.stdout[:MAX_ANSWER])
    except ValueError:
        answer = {}
    if answer.get("ok"):
        result = answer["result"]
        return Extracted(
            type=str(result["type"]),
            pages=int(result["pages"]),
            blocks=[Block(str(b["text"]), int(b["page"]), bool(b["heading"])) for b in result["blocks"]],
            title=str(result["title"]),
        )
    if "status" in answer:
        raise DocumentError(int(answer["status"]), str(answer["message"]))
    raise DocumentError(422, "The document could not be read (the reader stopped unexpectedly)")


def child_main() -> int:
    """The child: header + file on stdin, one JSON answer on stdout."""
    raw = sys.stdin.buffer.read()
    answer: dict[str, Any]
    try:
        (length,) = struct.unpack(">I", raw[:4])
        header = json.loads(raw[4 : 4 + length])
        data = raw[4 + length :]
        del raw
        memory = int(header.get("memory_mb", 0)) * 1024 * 1024
        if memory > 0:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        result = extract(data, str(header["filename"]), Limits(**header["limits"]))
        answer = {"ok": True, "result": asdict(result)}
    except DocumentError as exc:
        answer = {"status": exc.status, "message": exc.message}
    except MemoryError:
        answer = {"status": 422, "message": "The document needs too much memory to read"}
    except RecursionError:
        answer = {"status": 422, "message": "The document is nested too deeply to read"}
    except Exception:
        answer = {"status": 422, "message": "The document is damaged or malformed and could not be read"}
    sys.stdout.write(json.dumps(answer))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    import logging

    logging.disable(logging.CRITICAL)  # pypdf's warnings about damaged files are not the server's log
    raise SystemExit(child_main())
