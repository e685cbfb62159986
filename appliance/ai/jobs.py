"""The AI service of a running server: the engine, and long work as jobs.

A job is a row in its environment's `jobs` table (so a restart keeps its record: queued jobs are
started again, running ones are marked failed) plus, while it runs, a cancel token and the event
queues of whoever follows it over server-sent events. Jobs run in a small thread pool; the engine
serialises model calls itself, with its own bounded queue.

Across the processes of `serve --workers N` (server.workers): each progress event is also written
to `job_events` in the transaction that records the progress, so a follower on another worker
reads it (`follow`); a cancel from another worker sets `jobs.cancel_requested`, which the owning
worker's watcher thread turns into the job's CancelToken within CANCEL_POLL seconds. Both sides
look for news with `PRAGMA data_version`, which changes only when another connection committed to
the file and costs no page read (as workspaces.keycache). The owning worker's own followers and
cancels keep the in-memory path.

A worker killed mid-job (kill -9, a crash) cannot record its jobs' end. So each worker keeps the
list of the jobs it holds in a file named after its pid (`owner_file`, written when a job is
taken and when it ends); the supervisor, seeing the worker dead, fails those jobs that are still
queued or running (`fail_jobs_of`) before it starts the worker again. Their followers on other
workers see the failed row; the job can be started again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from appliance import logs
from appliance.ai.config import create_engine, local_options
from appliance.ai.engine import CancelToken, Engine, EngineStatus
from appliance.ai.errors import AIError, Cancelled
from appliance.ai.model_host import ModelHost, run_dir_of, try_own
from appliance.ai.models import default_models_dir
from appliance.config import AISettings
from appliance.runtime import Runtime
from appliance.security.audit import now_iso
from appliance.storage.database import fetch_all, fetch_one, last_id
from appliance.storage.diskfull import is_disk_full
from appliance.storage.files import durable_write

FINAL = ("succeeded", "failed", "cancelled")
CANCEL_POLL = 0.2  # seconds between the owning worker's looks for another worker's cancel
EVENTS_KEPT_SECONDS = 3600  # a finished job's events are pruned when a later job ends
Work = Callable[["JobContext"], dict[str, Any]]
HANDLERS: dict[str, Work] = {}


def handler(kind: str) -> Callable[[Work], Work]:
    """Register the function that does one kind of job (see appliance.ai.tasks)."""

    def register(fn: Work) -> Work:
        HANDLERS[kind] = fn
        return fn

    return register


def job_to_wire(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"], "kind": row["kind"], "status": row["status"], "progress": round(row["progress"], 3),
        "message": row["message"], "result": json.loads(row["result"]) if row["result"] else None,
        "error": row["error"], "created": row["created"], "updated": row["updated"], "finished": row["finished"],
    }


@dataclass
class JobContext:
    """What a job function gets: its input, the engine, its database, progress and cancel."""

    service: AIService
    workspace_id: int
    environment: str
    job_id: int
    params: dict[str, Any]
    cancel: CancelToken
    _report: Callable[[float, str, dict[str, Any] | None], None]

    @property
    def engine(self) -> Engine:
        return self.service.engine

    @property
    def retries(self) -> int:
        return self.service.quality_retries

    @property
    def db(self) -> Any:
        return self.service.runtime.environment(self.workspace_id, self.environment)

    def progress(self, fraction: float, message: str, data: dict[str, Any] | None = None) -> None:
        if self.cancel.cancelled:
            raise Cancelled("cancelled")
        self._report(fraction, message, data)


@dataclass
class _Live:
    cancel: CancelToken = field(default_factory=CancelToken)
    future: Future[dict[str, Any]] = field(default_factory=Future)
    listeners: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[dict[str, Any]]]] = field(default_factory=list)


def ai_settings(runtime: Runtime) -> AISettings:
    """The `[ai]` settings with the models dir resolved: <repo>/models from source, <data dir>/models
    in the binary."""
    ai_config = runtime.settings.ai
    if not ai_config.models_dir:
        ai_config = dataclasses.replace(ai_config, models_dir=str(default_models_dir(runtime.data_dir)))
    return ai_config


def start_model_process(runtime: Runtime) -> ModelHost | None:
    """Own the appliance's model process from a process that serves no AI itself (the supervisor of
    `serve --workers N`): the workers are then all its clients, and a worker's crash or restart does
    not touch the model. None when the on-box engine is off, runs in-process, or another process
    owns it already."""
    ai_config = ai_settings(runtime)
    if not (ai_config.local and ai_config.process):
        return None
    run_dir = run_dir_of(runtime.data_dir)
    fd = try_own(run_dir)
    return ModelHost(run_dir, local_options(ai_config), fd) if fd is not None else None


def fail_jobs_of(runtime: Runtime, owner_file: Path, reason: str) -> int:
    """The jobs a dead worker held (its `owner_file`) that are still queued or running: failed,
    with `reason` as their error. Returns how many; the file is removed."""
    try:
        keys = json.loads(owner_file.read_text())
    except FileNotFoundError:
        return 0
    failed = 0
    for workspace_id, environment, job_id in keys:

        def fail(w: sqlite_utils.Database, job_id: int = job_id) -> int:
            now = now_iso()
            return int(w.execute(
                "UPDATE jobs SET status = 'failed', error = ?, finished = ?, updated = ? "
                "WHERE id = ? AND status IN ('queued', 'running')", [reason, now, now, job_id]).rowcount)

        failed += runtime.environment(workspace_id, environment).write(fail)
    owner_file.unlink(missing_ok=True)
    return failed


class AIService:
    def __init__(
        self, runtime: Runtime, engine: Engine | None = None, workers: int = 2, owner_file: Path | None = None
    ) -> None:
        """`owner_file`: in a worker of `serve --workers N`, where it lists the jobs it holds for
        its supervisor (fail_jobs_of)."""
        self.runtime = runtime
        self.owner_file = owner_file
        self._engine = engine
        self._engine_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ai-job")
        self._live: dict[tuple[int, str, int], _Live] = {}
        # fresh samples for a result that fails the quality gate ([ai] quality_retries)
        self.quality_retries = runtime.settings.ai.quality_retries
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None  # another worker's cancels (watch_cancels)

    # -- the engine -----------------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        with self._engine_lock:
            if self._engine is None:
                # the server's model process listens in the data directory's run directory
                self._engine = create_engine(ai_settings(self.runtime), run_dir_of(self.runtime.data_dir))
            return self._engine

    def start(self, *, recover: bool = True) -> None:
        """Begin loading the model in the background and pick up jobs a restart interrupted.
        `recover=False`: another server process of the same appliance does that (server.workers)."""
        engine = self.engine
        logs.event("ai engine", engine=engine.name, status=str(engine.status()))
        if recover:
            self.recover()

    def status(self) -> EngineStatus:
        return self._engine.status() if self._engine is not None else EngineStatus.LOADING

    # -- jobs -----------------------------------------------------------------------------------
    def submit(
        self, workspace_id: int, environment: str, kind: str, params: dict[str, Any], actor: str
    ) -> tuple[int, Future[dict[str, Any]]]:
        """Record and start a job; returns its id and a future of its final row (an exception for a
        failed job), valid even if the job finishes before the caller looks."""
        if kind not in HANDLERS:
            raise ValueError(f"unknown job kind {kind}")
        database = self.runtime.environment(workspace_id, environment)

        def insert(w: sqlite_utils.Database) -> int:
            now = now_iso()
            cursor = w.execute(
                "INSERT INTO jobs (kind, status, input, actor, created, updated) VALUES (?, 'queued', ?, ?, ?, ?)",
                [kind, json.dumps(params), actor, now, now],
            )
            return last_id(cursor)

        job_id = database.write(insert)
        return job_id, self._start(workspace_id, environment, job_id, kind, params)

    def _start(
        self, workspace_id: int, environment: str, job_id: int, kind: str, params: dict[str, Any]
    ) -> Future[dict[str, Any]]:
        live = _Live()
        key = (workspace_id, environment, job_id)
        with self._lock:
            self._live[key] = live
            self._write_owned()
            if self._watcher is None or not self._watcher.is_alive():
                self._watcher = threading.Thread(target=self._watch_cancels, name="ai-job-cancels", daemon=True)
                self._watcher.start()
        self._pool.submit(self._run, key, kind, params, live)
        return live.future

    def _watch_cancels(self) -> None:
        """While jobs run here: cancel those another worker asked to cancel (jobs.cancel_requested).
        Each environment's file is queried only when its data_version moved."""
        versions: dict[tuple[int, str], tuple[Any, int]] = {}
        while True:
            with self._lock:
                live = dict(self._live)
                if not live:
                    self._watcher = None
                    return
            by_env: dict[tuple[int, str], list[int]] = {}
            for workspace_id, environment, job_id in live:
                by_env.setdefault((workspace_id, environment), []).append(job_id)
            for env, ids in by_env.items():
                try:
                    db = self.runtime.environment(*env).read()
                    version = db.conn.execute("PRAGMA data_version").fetchone()[0]
                    if versions.get(env) == (db.conn, version):
                        continue
                    versions[env] = (db.conn, version)
                    marks = ", ".join("?" * len(ids))
                    rows = db.execute(
                        f"SELECT id FROM jobs WHERE cancel_requested = 1 AND id IN ({marks})", ids
                    ).fetchall()
                except Exception as exc:  # a closed or rekeyed database: look again next round
                    logs.event("ai job cancels not read", level=30, error=type(exc).__name__)
                    versions.pop(env, None)
                    continue
                for (job_id,) in rows:
                    live[(*env, job_id)].cancel.cancel()
            time.sleep(CANCEL_POLL)

    def _update(
        self, key: tuple[int, str, int], event: dict[str, Any] | None = None, **values: Any
    ) -> dict[str, Any]:
        """Update the job's row; `event` (a progress event) is recorded with it for the followers on
        other workers, and a finished job prunes the events of jobs finished long ago."""
        database = self.runtime.environment(key[0], key[1])
        values["updated"] = now_iso()
        columns = ", ".join(f"{k} = ?" for k in values)

        def job(w: sqlite_utils.Database) -> dict[str, Any]:
            w.execute(f"UPDATE jobs SET {columns} WHERE id = ?", [*values.values(), key[2]])
            if event is not None:
                w.execute("INSERT INTO job_events (job_id, event) VALUES (?, ?)", [key[2], json.dumps(event)])
            if values.get("finished"):
                cutoff = datetime.fromtimestamp(time.time() - EVENTS_KEPT_SECONDS, UTC).isoformat(
                    timespec="microseconds").replace("+00:00", "Z")  # as now_iso writes `finished`
                w.execute("DELETE FROM job_events WHERE job_id IN (SELECT id FROM jobs WHERE finished < ?)", [cutoff])
            row = fetch_one(w, "SELECT * FROM jobs WHERE id = ?", [key[2]])
            assert row is not None
            return job_to_wire(row)

        return database.write(job)

    def _publish(self, live: _Live, event: dict[str, Any]) -> None:
        for loop, queue in list(live.listeners):
            loop.call_soon_threadsafe(queue.put_nowait, event)

    def _run(self, key: tuple[int, str, int], kind: str, params: dict[str, Any], live: _Live) -> None:
        def report(fraction: float, message: str, data: dict[str, Any] | None) -> None:
            event = {"type": "progress", "progress": round(fraction, 3), "message": message, "data": data}
            self._update(key, event, progress=max(0.0, min(1.0, fraction)), message=message[:200])
            self._publish(live, event)

        try:
            if live.cancel.cancelled:
                raise Cancelled("cancelled")
            self._update(key, status="running")
            ctx = JobContext(self, key[0], key[1], key[2], params, live.cancel, report)
            result = HANDLERS[kind](ctx)
            row = self._settle(key, status="succeeded", progress=1.0, result=json.dumps(result), finished=now_iso())
            live.future.set_result(row)
        except Cancelled:
            row = self._settle(key, status="cancelled", error="cancelled", finished=now_iso())
            live.future.set_result(row)
        except Exception as exc:
            from appliance.ai.http import public_message  # one mapping of errors to words

            row = self._settle(key, status="failed", error=public_message(exc), finished=now_iso())
            live.future.set_exception(exc)
            # AI errors carry our own words (never prompt or document text): log them for the operator
            detail = str(exc)[:300] if isinstance(exc, AIError) else ""
            logs.event("ai job failed", level=30, job=key[2], kind=kind, error=type(exc).__name__, detail=detail)
        self._publish(live, {"type": row["status"], "job": row})
        with self._lock:
            self._live.pop(key, None)
            self._write_owned()

    def _write_owned(self) -> None:
        """Write the jobs this worker holds to its owner file (under self._lock). Replaced, never
        written in place: the supervisor reads it after a kill -9 at any instant."""
        if self.owner_file is None:
            return
        durable_write(self.owner_file, json.dumps([list(key) for key in self._live]).encode())

    def _settle(self, key: tuple[int, str, int], **fields: Any) -> dict[str, Any]:
        """Record a job's end. When the record cannot be written (a full disk) the waiters still get
        the outcome; the row stays 'running' and the next start marks it failed (recover())."""
        try:
            return self._update(key, **fields)
        except Exception as exc:
            logs.event("ai job end not recorded", level=40, job=key[2], status=fields["status"],
                       error=type(exc).__name__)
            try:
                row = self.get(*key) or {"id": key[2]}
            except Exception:
                row = {"id": key[2]}
            result = json.loads(fields["result"]) if fields.get("result") else row.get("result")
            return {**row, "status": fields["status"], "error": fields.get("error"), "result": result,
                    "finished": fields.get("finished")}

    def future(self, workspace_id: int, environment: str, job_id: int) -> Future[dict[str, Any]] | None:
        with self._lock:
            live = self._live.get((workspace_id, environment, job_id))
        return live.future if live else None

    def get(self, workspace_id: int, environment: str, job_id: int) -> dict[str, Any] | None:
        row = fetch_one(self.runtime.environment(workspace_id, environment).read(),
                        "SELECT * FROM jobs WHERE id = ?", [job_id])
        return job_to_wire(row) if row else None

    def cancel(self, workspace_id: int, environment: str, job_id: int) -> bool:
        """Cancel a queued or running job: at once when it runs here, otherwise through its row,
        which the worker running it watches (_watch_cancels). False when it has already ended."""
        with self._lock:
            live = self._live.get((workspace_id, environment, job_id))
        if live is not None:
            live.cancel.cancel()
            return True
        database = self.runtime.environment(workspace_id, environment)
        changed = database.write(lambda w: w.execute(
            "UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND status IN ('queued', 'running')", [job_id]
        ).rowcount)
        return bool(changed)

    def last_event(self, workspace_id: int, environment: str) -> int:
        """The newest recorded event's id in an environment: a follower starts after it."""
        row = self.runtime.environment(workspace_id, environment).read().execute(
            "SELECT COALESCE(MAX(id), 0) FROM job_events").fetchone()
        return int(row[0])

    def data_version(self, workspace_id: int, environment: str) -> tuple[Any, int]:
        """This thread's reading connection to the environment and its `PRAGMA data_version`: when
        neither changed, nothing was committed since (a follower on another worker polls this)."""
        conn = self.runtime.environment(workspace_id, environment).read().conn
        return conn, int(conn.execute("PRAGMA data_version").fetchone()[0])

    def events_after(
        self, workspace_id: int, environment: str, job_id: int, after: int
    ) -> tuple[list[tuple[int, dict[str, Any]]], dict[str, Any] | None]:
        """A job's recorded events after event id `after`, and its row once it has ended."""
        db = self.runtime.environment(workspace_id, environment).read()
        # the row first: every event of a job read as ended was committed before its end
        row = fetch_one(db, "SELECT * FROM jobs WHERE id = ?", [job_id])
        final = job_to_wire(row) if row is not None and row["status"] in FINAL else None
        events = [(r[0], json.loads(r[1])) for r in db.execute(
            "SELECT id, event FROM job_events WHERE job_id = ? AND id > ? ORDER BY id", [job_id, after]).fetchall()]
        return events, final

    def listen(self, workspace_id: int, environment: str, job_id: int) -> asyncio.Queue[dict[str, Any]] | None:
        """Events of a running job for this event loop; None when the job is not running."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        with self._lock:
            live = self._live.get((workspace_id, environment, job_id))
            if live is None:
                return None
            live.listeners.append((asyncio.get_running_loop(), queue))
        return queue

    def recover(self) -> None:
        """After a restart: a job that was running is failed (its work is lost); queued ones run."""
        for workspace_id, environment in self.runtime.environment_ids():
            database = self.runtime.environment(workspace_id, environment)
            try:
                database.write(lambda w: w.execute(
                    "UPDATE jobs SET status = 'failed', error = 'interrupted by a restart', finished = ?, "
                    "updated = ? WHERE status = 'running'", [now_iso(), now_iso()]))
            except Exception as exc:
                if not is_disk_full(exc):
                    raise
                # started on a full disk: the records wait for the next start; nothing runs meanwhile
                logs.event("ai jobs not recovered: the disk is full", level=30, workspace=workspace_id,
                           environment=environment)
                continue
            for row in fetch_all(database.read(), "SELECT id, kind, input FROM jobs WHERE status = 'queued'"):
                if row["kind"] in HANDLERS:
                    self._start(workspace_id, environment, row["id"], row["kind"], json.loads(row["input"]))

    def stop(self) -> None:
        with self._lock:
            for live in self._live.values():
                live.cancel.cancel()
        self._pool.shutdown(wait=True, cancel_futures=False)
        if self.owner_file is not None:
            self.owner_file.unlink(missing_ok=True)  # every job here has recorded its end
        if self._engine is not None:
            self._engine.close()
