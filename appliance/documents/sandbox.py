"""Run extraction in a child process with a deadline and a memory cap.

A hostile file (a PDF whose streams inflate without end, a parser trap that loops) can then cost at
most one child process: after `timeout` seconds it is killed and the upload gets a clear 422, and the
server, its model and its other requests carry on. The child is a fresh interpreter
(`python -m appliance.documents.sandbox`), never a fork of the multi-threaded server; it gets the
file on stdin and answers with JSON on stdout (plain data: a compromised child cannot make the
server run anything, as it could with pickle).

Each reader reads exactly one document and exits. To keep interpreter start-up and imports off the
upload's path, the next reader is started as soon as one has answered and waits, warmed up, for
its document (`SPARE`); everything above holds for it unchanged (see _Spare).

In the one-file binary there is no `python -m`: the child is the binary itself with the hidden first
argument `_document-reader` (the entry script build/binary.sh writes dispatches it before the CLI is
imported). It is given the PyInstaller bootloader's variables, so it runs from the server's unpacked
directory as one process (no second unpack; a kill at the deadline stops the reader itself), and it
caps its own memory the same way.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import struct
import subprocess
import sys
import threading
from dataclasses import asdict
from typing import Any

from appliance import isolation
from appliance.documents.extract import Block, DocumentError, Extracted, Limits, extract
from appliance.isolation import ENV_KEYS, ChildNotStarted, ChildTimeout

MAX_ANSWER = 64 * 1024 * 1024
READER_ARG = "_document-reader"  # the binary's hidden first argument (build/binary.sh's entry script)
PACKAGE_ROOT = isolation.PACKAGE_ROOT


def reader_command() -> tuple[list[str], dict[str, str]]:
    """The reader's argv and the variables it needs beyond run_isolated's minimal environment."""
    return isolation.program_command("appliance.documents.sandbox", READER_ARG)


class _Spare:
    """One reader started ahead of time, waiting (pypdf imported) for exactly one document.

    Starting an interpreter and importing pypdf costs more than reading a 100-page PDF, so the
    next reader is started when the previous one has finished, off the upload's critical path.
    It is the same fresh, minimal-environment child as a cold one; it reads one document and exits,
    so nothing of one upload can reach the next. Its deadline starts when the file is handed over
    (a spare still starting up spends part of it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._key: tuple[Any, ...] = ()
        atexit.register(self.discard)

    def take(self, argv: list[str], env: dict[str, str], cwd: str) -> subprocess.Popen[bytes] | None:
        """The waiting reader for this command, if it is still alive; None: start one cold."""
        with self._lock:
            proc, key, self._proc = self._proc, self._key, None
        if proc is None:
            return None
        if key != (argv, env, cwd) or proc.poll() is not None:  # another command, or it died waiting
            _stop(proc)
            return None
        return proc

    def refill(self, argv: list[str], env: dict[str, str], cwd: str) -> None:
        """Start the next reader (no-op when one is waiting); never raises: a failed start only
        means the next upload starts its reader itself."""
        with self._lock:
            if self._proc is not None:
                return
            try:
                self._proc = _start(argv, env, cwd)
                self._key = (argv, env, cwd)
            except OSError:
                self._proc = None

    def discard(self) -> None:
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None:
            _stop(proc)


SPARE = _Spare()


def prestart() -> None:
    """Start a reader now, so that even the first upload finds one waiting (for the server's
    start-up; without it the first upload starts its reader itself, 0.15-0.7 s)."""
    argv, env = reader_command()
    SPARE.refill(argv, env, PACKAGE_ROOT)


def _start(argv: list[str], env: dict[str, str], cwd: str) -> subprocess.Popen[bytes]:
    full_env = {**{k: v for k, v in os.environ.items() if k in ENV_KEYS}, **env}  # no secrets, as run_isolated
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env=full_env, cwd=cwd)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    try:
        proc.communicate(timeout=5)
    except (subprocess.TimeoutExpired, OSError, ValueError):  # pragma: no cover - a kill cannot be refused
        pass


def _run_reader(payload: bytes, timeout: float) -> bytes:
    """Hand `payload` to a reader (the spare, or a fresh one) and return its stdout; the reader is
    killed after `timeout` seconds. The next spare is started once this reader is done."""
    argv, env = reader_command()
    proc = SPARE.take(argv, env, PACKAGE_ROOT)
    if proc is None:
        try:
            proc = _start(argv, env, PACKAGE_ROOT)  # cwd: the child imports this package from where we did
        except OSError as exc:
            raise ChildNotStarted(exc.strerror or type(exc).__name__) from None
    try:
        out, _err = proc.communicate(payload, timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(proc)
        raise ChildTimeout(f"stopped after {timeout:g} s") from None
    except BaseException:
        _stop(proc)
        raise
    finally:
        SPARE.refill(argv, env, PACKAGE_ROOT)
    return out


def extract_isolated(
    data: bytes, filename: str, limits: Limits, *, timeout: float, memory_mb: int = 1024
) -> Extracted:
    """`extract()` in a child process; raises DocumentError (422 on timeout or a crashed child)."""
    header = json.dumps({"filename": filename, "limits": asdict(limits), "memory_mb": memory_mb}).encode()
    try:
        stdout = _run_reader(struct.pack(">I", len(header)) + header + data, timeout)
    except ChildTimeout:
        raise DocumentError(422, f"Reading the document took longer than {timeout:g} seconds; it was stopped") from None
    except ChildNotStarted:
        raise DocumentError(503, "The document reader could not be started; retry shortly") from None
    try:
        answer: dict[str, Any] = json.loads(stdout[:MAX_ANSWER])
    except ValueError:
        answer = {}
    if answer.get("ok"):
        result = answer["result"]
        return Extracted(
            type=str(result["type"]),
            pages=int(result["pages"]),
            blocks=[Block(str(text), int(page), bool(heading)) for text, page, heading in result["blocks"]],
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
        blocks = [[b.text, b.page, b.heading] for b in result.blocks]  # compact: no key names per block
        answer = {"ok": True, "result": {"type": result.type, "pages": result.pages, "title": result.title,
                                         "blocks": blocks}}
    except DocumentError as exc:
        answer = {"status": exc.status, "message": exc.message}
    except MemoryError:
        answer = {"status": 422, "message": "The document needs too much memory to read"}
    except RecursionError:
        answer = {"status": 422, "message": "The document is nested too deeply to read"}
    except Exception:
        answer = {"status": 422, "message": "The document is damaged or malformed and could not be read"}
    sys.stdout.write(json.dumps(answer, separators=(",", ":")))
    sys.stdout.flush()
    return 0


def _tiny_pdf() -> bytes:
    """A valid one-page PDF with one line of Helvetica text (xref offsets computed)."""
    stream = b"BT /F1 9 Tf 9 9 Td (warm) Tj ET"
    bodies = [
        b"<</Type/Catalog/Pages 2 0 R>>",
        b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
        b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 99 99]/Contents 4 0 R/Resources<</Font<</F1 5 0 R>>>>>>",
        b"<</Length %d>>stream\n%s\nendstream" % (len(stream), stream),
        b"<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(bodies, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = b"xref\n0 6\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    return out + xref + b"trailer<</Size 6/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % len(out)


def memoise_pypdf_encodings() -> bool:
    """Make pypdf build each named font encoding table once per reader instead of once per page.

    pypdf 7 rebuilds the 256-entry table of a simple font's encoding (WinAnsi: 256 codec calls)
    every time a page's fonts are loaded: a third of the time of reading a text PDF (measured with
    cProfile on the 100-page benchmark PDF; see docs/documents.md). The table depends only on the
    encoding's name, so the reader keeps one per name and hands out copies (callers apply the
    font's /Differences to theirs). The extracted text is the same (tests/documents). Only the
    reader child calls this; if pypdf's internals move, nothing is patched and reading is only
    slower (a test checks that the patch is in place for the pinned pypdf)."""
    try:
        import pypdf._codecs as codecs
        import pypdf._text_extraction._text_extractor as extractor
        import pypdf.generic._font as font
    except ImportError:  # pragma: no cover - another pypdf layout
        return False
    original = getattr(codecs, "encoding_dict_from_named_encoding", None)
    if original is None or getattr(original, "memoised", False):
        return original is not None
    table = functools.lru_cache(maxsize=64)(original)

    def memoised(encoding: str) -> dict[int, str]:
        return dict(table(encoding))

    memoised.memoised = True  # type: ignore[attr-defined]
    patched = False
    for module in (codecs, font, extractor):
        if getattr(module, "encoding_dict_from_named_encoding", None) is original:
            module.encoding_dict_from_named_encoding = memoised  # type: ignore[attr-defined]
            patched = True
    return patched


def preload() -> None:
    """Import the readers and run a tiny PDF through them before any input is read, so a reader
    started ahead of time (the spare) spends nothing on imports or first-use set-up once a file
    arrives."""
    memoise_pypdf_encodings()
    try:
        extract(_tiny_pdf(), "warm.pdf", Limits())
    except DocumentError:  # pragma: no cover - the warm-up only saves time; reading works without it
        pass


def child_entry() -> int:
    """`python -m appliance.documents.sandbox`, or `appliance _document-reader` in the binary."""
    import logging

    logging.disable(logging.CRITICAL)  # pypdf's warnings about damaged files are not the server's log
    preload()
    code = child_main()
    # The answer is written and flushed: leave without the interpreter's clean-up (tearing down
    # pypdf's modules took ~25 ms the upload was waiting for; there is nothing to save).
    os._exit(code)


if __name__ == "__main__":
    raise SystemExit(child_entry())
