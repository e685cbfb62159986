"""The audit log: every request, hash-chained, in its own encrypted database, fail-closed.

Each entry's `hash` is HMAC-SHA256(audit MAC key, prev hash + canonical JSON of the entry), and
`prev` is the previous entry's hash, so a changed, removed or reordered entry breaks the chain.
Removing entries from the end leaves a valid chain, so the head (seq and hash) is also written,
MAC'd, to `audit.head` once a second; `verify` checks the database still reaches that head.
Entries are committed by the audit database's writer thread in groups before the response is sent;
a request whose entry cannot be committed fails with 503, or 507 when the disk is full (see
server.middleware and storage.diskfull).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import sqlite_utils

from appliance.storage.crypto import write_secret_file
from appliance.storage.database import Database
from appliance.storage.diskfull import is_disk_full

GENESIS = "0" * 64
HEAD_FILE = "audit.head"
MAC_KEY = "audit-mac"
FIELDS = (
    "time",
    "actor",
    "workspace_id",
    "environment",
    "method",
    "route",
    "status",
    "target",
    "request_id",
    "client",
    "user_agent",
    "duration_ms",
)


class AuditUnavailable(Exception):
    """The audit log cannot be written; the caller must fail the request.

    `disk_full` says why, when it is the disk: the request then fails with 507, not 503."""

    def __init__(self, message: str = "", *, disk_full: bool = False) -> None:
        super().__init__(message)
        self.disk_full = disk_full


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass
class AuditEvent:
    actor: str
    method: str
    route: str
    status: int
    request_id: str
    workspace_id: int | None = None
    environment: str | None = None
    target: str | None = None
    client: str | None = None
    user_agent: str | None = None
    duration_ms: float | None = None
    time: str = field(default_factory=now_iso)

_INSERT = f"INSERT INTO audit (seq, {', '.join(FIELDS)}, prev, hash) VALUES (?, {', '.join('?' * len(FIELDS))}, ?, ?)"


def _canonical(seq: int, entry: dict[str, Any]) -> bytes:
    body = {"seq": seq, **{k: entry.get(k) for k in FIELDS}}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(mac_key: bytes, prev: str, seq: int, entry: dict[str, Any]) -> str:
    return hmac.new(mac_key, prev.encode() + b"\n" + _canonical(seq, entry), hashlib.sha256).hexdigest()


@dataclass
class VerifyResult:
    ok: bool
    entries: int
    problems: list[str]


class AuditLog:
    def __init__(self, database: Database, mac_key: bytes, data_dir: Path) -> None:
        self.database = database
        self._mac_key = mac_key
        self._head_path = data_dir / HEAD_FILE
        self._head: tuple[int, str] | None = None
        self._head_lock = threading.Lock()
        self._written_head: tuple[int, str] | None = None
        self._stop = threading.Event()
        self._anchor_thread: threading.Thread | None = None
        # False in `serve --workers N` workers: their supervisor anchors the shared head
        self.anchors = True
        # entries waiting for the next turn of each event loop (record, _flush)
        self._batches: dict[asyncio.AbstractEventLoop, list[tuple[dict[str, Any], asyncio.Future[None]]]] = {}

    # -- writing --------------------------------------------------------------------------------
    def _job_for(self, entries: list[dict[str, Any]]) -> Callable[[sqlite_utils.Database], tuple[int, str]]:
        """One writer job for a batch of entries, chained in order: the previous hash is read once,
        inside the transaction (what keeps one chain when several processes write)."""

        def job(db: sqlite_utils.Database) -> tuple[int, str]:
            row = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev = (row[0], row[1]) if row else (0, GENESIS)
            rows = []
            for entry in entries:
                seq += 1
                digest = entry_hash(self._mac_key, prev, seq, entry)
                rows.append([seq, *(entry[k] for k in FIELDS), prev, digest])
                prev = digest
            db.conn.executemany(_INSERT, rows)
            return seq, prev

        return job

    def record_sync(self, event: AuditEvent) -> None:
        try:
            head = self.database.write(self._job_for([dict(vars(event))]))
        except Exception as exc:
            raise AuditUnavailable(str(exc), disk_full=is_disk_full(exc)) from None
        self._note_head(head)

    async def record(self, event: AuditEvent) -> None:
        """Commit a request's entry; returns once it is committed (fail-closed: raises otherwise).

        The entries of the requests that reach this point in one turn of the event loop go to the
        writer thread as one job (_flush): one hand-off between threads, one future and one
        transaction step for the batch, rather than per request (docs/performance.md). The
        writer still commits whatever jobs are queued as one group."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        batch = self._batches.get(loop)
        if batch is None:
            batch = self._batches[loop] = []
            loop.call_soon(self._flush, loop)
        batch.append((dict(vars(event)), done))  # a flat dataclass: asdict's deep copy costs more
        try:
            await done
        except AuditUnavailable:
            raise
        except Exception as exc:
            raise AuditUnavailable(type(exc).__name__, disk_full=is_disk_full(exc)) from None

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = self._batches.pop(loop)
        try:
            written = asyncio.wrap_future(self.database.submit(self._job_for([e for e, _ in batch])), loop=loop)
        except Exception as exc:  # a closed database: every waiter fails, none hangs
            self._settle(batch, exc, None)
            return

        def settle(f: asyncio.Future[tuple[int, str]]) -> None:
            if f.cancelled():  # the loop is closing
                self._settle(batch, None, None)
            elif (exc := f.exception()) is not None:
                self._settle(batch, exc, None)
            else:
                self._settle(batch, None, f.result())

        written.add_done_callback(settle)

    def _settle(
        self, batch: list[tuple[dict[str, Any], asyncio.Future[None]]], exc: BaseException | None,
        head: tuple[int, str] | None,
    ) -> None:
        if head is not None:
            self._note_head(head)
        for _entry, done in batch:
            if done.done():  # the request was cancelled (its client went away): its entry stands
                continue
            if head is not None:
                done.set_result(None)
            else:
                done.set_exception(
                    AuditUnavailable(type(exc).__name__ if exc else "cancelled", disk_full=exc is not None and is_disk_full(exc))
                )

    async def ensure_writable(self) -> None:
        """Take and release the audit database's write lock (an empty transaction: no fsync).

        Called before a request that changes data, so a change is never made while its audit
        entry could not be written."""
        try:
            await self.database.awrite(lambda db: None)
        except Exception as exc:
            raise AuditUnavailable(type(exc).__name__, disk_full=is_disk_full(exc)) from None

    def _note_head(self, head: tuple[int, str]) -> None:
        with self._head_lock:
            if self._head is None or head[0] > self._head[0]:
                self._head = head

    # -- the head anchor -------------------------------------------------------------------------
    def _anchor_mac(self, seq: int, digest: str) -> str:
        return hmac.new(self._mac_key, f"head:{seq}:{digest}".encode(), hashlib.sha256).hexdigest()

    def write_anchor(self) -> None:
        """Write the committed head to `audit.head`. The head is read from the database, not only
        from this process's own entries: with `serve --workers N` the entries come from several
        processes, and the anchor is written by one of them (server.workers). Only the process
        that anchors (start_anchoring) reads it so; the head never moves back (_note_head)."""
        if not self.anchors:
            return
        if self._anchor_thread is not None:
            row = self.database.read().execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            if row is not None:
                self._note_head((int(row[0]), str(row[1])))
        with self._head_lock:
            head = self._head
        if head is None or head == self._written_head:
            return
        doc = {"seq": head[0], "hash": head[1], "mac": self._anchor_mac(*head)}
        write_secret_file(self._head_path, json.dumps(doc).encode())
        self._written_head = head

    def start_anchoring(self, interval: float = 1.0) -> None:
        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.write_anchor()
                except OSError:
                    pass  # retried next second; verify reports a stale anchor as a lag, not tampering

        self._anchor_thread = threading.Thread(target=loop, name="audit-anchor", daemon=True)
        self._anchor_thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._anchor_thread is not None:
            self._anchor_thread.join(timeout=5)
        self.write_anchor()

    # -- reading ----------------------------------------------------------------------------------
    def rows(self) -> Iterator[dict[str, Any]]:
        db = self.database.read()
        cursor = db.execute(f"SELECT seq, {', '.join(FIELDS)}, prev, hash FROM audit ORDER BY seq")
        names = [d[0] for d in cursor.description]
        for values in cursor:
            yield dict(zip(names, values, strict=True))

    def verify(self) -> VerifyResult:
        problems: list[str] = []
        expected_prev, expected_seq, count = GENESIS, 1, 0
        last: tuple[int, str] | None = None
        for row in self.rows():
            count += 1
            seq = row["seq"]
            if seq != expected_seq:
                problems.append(f"entry {expected_seq} is missing (next entry is {seq})")
            if row["prev"] != expected_prev:
                problems.append(f"entry {seq}: chain broken (previous hash does not match)")
            if not hmac.compare_digest(row["hash"], entry_hash(self._mac_key, row["prev"], seq, row)):
                problems.append(f"entry {seq}: content was changed")
            expected_prev, expected_seq = row["hash"], seq + 1
            last = (seq, row["hash"])
            if len(problems) > 50:
                problems.append("... more problems not listed")
                break
        problems.extend(self._check_anchor(last))
        return VerifyResult(not problems, count, problems)

    def _check_anchor(self, last: tuple[int, str] | None) -> list[str]:
        if not self._head_path.exists():
            return []
        doc = json.loads(self._head_path.read_text())
        if not hmac.compare_digest(doc["mac"], self._anchor_mac(doc["seq"], doc["hash"])):
            return ["audit.head was altered"]
        if last is None or last[0] < doc["seq"]:
            return [f"entries after {last[0] if last else 0} were removed (the log reached {doc['seq']})"]
        row = self.database.read().execute("SELECT hash FROM audit WHERE seq = ?", [doc["seq"]]).fetchone()
        if row is None or row[0] != doc["hash"]:
            return [f"entry {doc['seq']} differs from the recorded head"]
        return []

    def export(self, out: IO[str], since_seq: int = 0) -> int:
        n = 0
        for row in self.rows():
            if row["seq"] > since_seq:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                n += 1
        return n
