"""Run extraction in a child process with a deadline and a memory cap.

A hostile file (a PDF whose streams inflate without end, a parser trap that loops) can then cost at
most one child process: after `timeout` seconds it is killed and the upload gets a clear 422, and the
server, its model and its other requests carry on. The child is a fresh interpreter
(`python -m appliance.documents.sandbox`), never a fork of the multi-threaded server; it gets the
file on stdin and answers with JSON on stdout (plain data: a compromised child cannot make the
server run anything, as it could with pickle).

In the one-file binary there is no `python -m`: the child is the binary itself with the hidden first
argument `_document-reader` (the entry script build/binary.sh writes dispatches it before the CLI is
imported). It is given the PyInstaller bootloader's variables, so it runs from the server's unpacked
directory as one process (no second unpack; a kill at the deadline stops the reader itself), and it
caps its own memory the same way.
"""

from __future__ import annotations

import json
import os
import struct
import sys
from dataclasses import asdict
from typing import Any

from appliance.documents.extract import Block, DocumentError, Extracted, Limits, extract
from appliance.isolation import ChildNotStarted, ChildTimeout, run_isolated

MAX_ANSWER = 64 * 1024 * 1024
READER_ARG = "_document-reader"  # the binary's hidden first argument (build/binary.sh's entry script)
# The one-file bootloader's variables (PyInstaller 6): with them a child of the same executable is a
# "subprocess" of this instance and uses its unpacked directory and library path.
FROZEN_ENV = (
    "_PYI_ARCHIVE_FILE",
    "_PYI_APPLICATION_HOME_DIR",
    "_PYI_PARENT_PROCESS_LEVEL",
    "LD_LIBRARY_PATH",
)


PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def reader_command() -> tuple[list[str], dict[str, str]]:
    """The reader's argv and the variables it needs beyond run_isolated's minimal environment."""
    if getattr(sys, "frozen", False):
        return [sys.executable, READER_ARG], {k: os.environ[k] for k in FROZEN_ENV if k in os.environ}
    return [sys.executable, "-m", "appliance.documents.sandbox"], {}


def extract_isolated(
    data: bytes, filename: str, limits: Limits, *, timeout: float, memory_mb: int = 1024
) -> Extracted:
    """`extract()` in a child process; raises DocumentError (422 on timeout or a crashed child)."""
    header = json.dumps({"filename": filename, "limits": asdict(limits), "memory_mb": memory_mb}).encode()
    argv, env = reader_command()
    try:
        done = run_isolated(  # cwd: the child imports this package from where the server did
            argv,
            struct.pack(">I", len(header)) + header + data,
            timeout=timeout,
            cwd=PACKAGE_ROOT,
            env=env,
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


def child_entry() -> int:
    """`python -m appliance.documents.sandbox`, or `appliance _document-reader` in the binary."""
    import logging

    logging.disable(logging.CRITICAL)  # pypdf's warnings about damaged files are not the server's log
    return child_main()


if __name__ == "__main__":
    raise SystemExit(child_entry())
