"""What the worker processes of `serve --workers N` count together: the rate limit and /metrics.

Both live in memory-mapped files in the data directory's run directory (`run/server/`, mode
0700), which the supervisor empties at its start (server.workers):

- `ratelimit.bin`: one table of token buckets for all workers, so a caller gets the configured
  rate in total, not once per worker. A caller's slot is found by a keyed hash of the caller
  (the API key's hash or the client address: neither is stored in clear) with a short linear
  probe; each check holds an exclusive `flock` on the file for a few reads and writes, so two
  workers never update one bucket at once. CLOCK_MONOTONIC is one clock for every process.
- `metrics-<worker>.bin`: each worker's counters, written in place by that worker alone (a name
  table and a value per name); `/metrics` on any worker sums every worker's file. A restarted
  worker opens its own file again and counts on from where it stopped, so a sum never goes back.

One process alone (`--workers 1`) keeps the in-memory rate limiter (server.middleware) and an
anonymous segment for its metrics: nothing to share, no syscall per request.
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import struct
import time
from pathlib import Path

SERVER_DIR = "server"  # under the run directory (ai.model_host.run_dir_of)
LIMITS_FILE = "ratelimit.bin"
METRICS_PREFIX = "metrics-"
JOBS_PREFIX = "jobs-"  # the AI jobs each worker holds (ai.jobs.fail_jobs_of)

# rate limit table: SLOTS buckets of (tag u64, tokens f64, last f64)
SLOTS = 1 << 14
PROBE = 8  # slots looked at from a caller's home slot
STALE = 60.0  # seconds unused after which a bucket is full again anyway, so its slot may be reused

# metrics segment: a count of names, NAMES names of NAME_BYTES, then one f64 value per name
NAMES = 1024
NAME_BYTES = 64
_HEADER = 8
_VALUES = _HEADER + NAMES * NAME_BYTES
SEGMENT_BYTES = _VALUES + NAMES * 8


def server_dir(run_dir: Path) -> Path:
    path = run_dir / SERVER_DIR
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def jobs_file(directory: Path, pid: int) -> Path:
    """Where the worker with this pid lists the AI jobs it holds."""
    return directory / f"{JOBS_PREFIX}{pid}.json"


def reset(run_dir: Path) -> Path:
    """At the supervisor's start: the previous run's counters and buckets are gone."""
    path = server_dir(run_dir)
    for old in path.iterdir():
        # a previous run's job lists too: this start's recovery fails every job left running
        if old.name == LIMITS_FILE or old.name.startswith((METRICS_PREFIX, JOBS_PREFIX)):
            old.unlink()
    return path


def _mapped(path: Path, size: int) -> mmap.mmap:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        if os.fstat(fd).st_size < size:
            os.ftruncate(fd, size)  # zero-filled: empty slots, zero counters
        return mmap.mmap(fd, size)
    finally:
        os.close(fd)  # the mapping keeps the file


class SharedRateLimiter:
    """The token bucket of server.middleware.RateLimiter, one table for every worker process.
    Called from one thread per process (the event loop's): `flock` excludes other processes."""

    def __init__(self, directory: Path, pepper: bytes, per_second: float, burst: int) -> None:
        self.rate = per_second
        self.burst = float(burst)
        self._key = hashlib.sha256(b"rate-limit\0" + pepper).digest()[:32]
        path = directory / LIMITS_FILE
        self._map = _mapped(path, SLOTS * 24)
        self._fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        self._tags = memoryview(self._map).cast("Q")
        self._floats = memoryview(self._map).cast("d")
        self._known: dict[str, int] = {}  # caller -> tag (a keyed hash costs more than the rest)
        self._slots: dict[int, int] = {}  # tag -> the slot it was last found in

    def _tag(self, caller: str) -> int:
        tag = self._known.get(caller)
        if tag is None:
            digest = hashlib.blake2b(caller.encode(), key=self._key, digest_size=8).digest()
            tag = int.from_bytes(digest, "little") or 1  # 0 marks an empty slot
            if len(self._known) > 50_000:  # callers are few; a bound so this never grows with traffic
                self._known.clear()
                self._slots.clear()
            self._known[caller] = tag
        return tag

    def _claim(self, tag: int, now: float) -> int:
        """The caller's slot: where its tag is, else an empty or the longest-unused slot near its
        home slot, which then starts as a full bucket. Called with the lock held."""
        tags, floats = self._tags, self._floats
        home = tag % SLOTS
        spare, spare_last = home, float("inf")
        for i in range(PROBE):
            s = (home + i) % SLOTS
            if tags[3 * s] == tag:
                return s
            last = floats[3 * s + 2] if tags[3 * s] else float("-inf")
            if last < spare_last:
                spare, spare_last = s, last
        tags[3 * spare] = tag
        floats[3 * spare + 1], floats[3 * spare + 2] = self.burst, now
        return spare

    def allow(self, caller: str) -> float:
        """Return 0 if allowed, otherwise the seconds to wait."""
        tag = self._tag(caller)
        floats = self._floats
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            now = time.monotonic()
            slot = self._slots.get(tag, -1)
            if slot < 0 or self._tags[3 * slot] != tag:  # first seen here, or taken over meanwhile
                slot = self._slots[tag] = self._claim(tag, now)
            at = 3 * slot
            tokens = min(self.burst, floats[at + 1] + (now - floats[at + 2]) * self.rate)
            floats[at + 2] = now
            if tokens < 1.0:
                floats[at + 1] = tokens
                return (1.0 - tokens) / self.rate
            floats[at + 1] = tokens - 1.0
            return 0.0
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        self._tags.release()
        self._floats.release()
        self._map.close()
        os.close(self._fd)


class Segment:
    """Named f64 counters in one memory map: a worker's file, or anonymous memory when alone.
    One writer (the owning process, under its metrics lock); readers sum whatever is there."""

    def __init__(self, path: Path | None = None) -> None:
        self._map = _mapped(path, SEGMENT_BYTES) if path is not None else mmap.mmap(-1, SEGMENT_BYTES)
        self.values = memoryview(self._map)[_VALUES:].cast("d")
        self._slots = {name: i for i, name in enumerate(read_names(self._map))}

    def slot(self, name: str) -> int:
        """The value index of a counter, given one at its first use (-1 when the table is full)."""
        index = self._slots.get(name)
        if index is None:
            index = len(self._slots)
            if index >= NAMES:
                return -1
            raw = name.encode()[:NAME_BYTES]
            offset = _HEADER + index * NAME_BYTES
            self._map[offset : offset + len(raw)] = raw
            struct.pack_into("<Q", self._map, 0, index + 1)  # the name is in place before it counts
            self._slots[name] = index
        return index

    def totals(self) -> dict[str, float]:
        return dict(zip(read_names(self._map), self.values, strict=False))


def read_names(buffer: mmap.mmap) -> list[str]:
    (count,) = struct.unpack_from("<Q", buffer, 0)
    count = min(count, NAMES)
    return [
        buffer[_HEADER + i * NAME_BYTES : _HEADER + (i + 1) * NAME_BYTES].rstrip(b"\0").decode(errors="replace")
        for i in range(count)
    ]


def summed(directory: Path) -> dict[str, float]:
    """Every worker's counters, added up by name."""
    totals: dict[str, float] = {}
    for path in sorted(directory.glob(METRICS_PREFIX + "*.bin")):
        if path.stat().st_size < SEGMENT_BYTES:
            continue  # a worker creating its file this instant: nothing counted yet
        with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
            names = read_names(buffer)
            values = struct.unpack_from(f"<{len(names)}d", buffer, _VALUES)
        for name, value in zip(names, values, strict=True):
            totals[name] = totals.get(name, 0.0) + value
    return totals
