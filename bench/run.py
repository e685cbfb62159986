"""Benchmarks: `make bench` (or `.venv/bin/python bench/run.py`). Results go to bench/results.json.

(a) HTTP: authenticated `GET /v1/headless/courses` against the real `appliance serve` (default settings
    except the rate limit, raised so the limiter is not what is measured), compared with a bare Litestar
    hello-world app under the same uvicorn settings (uvloop, httptools, one worker, no access log), for
    storage.synchronous FULL (the default) and NORMAL. Load from `wrk -t1 -c32` pinned to one core
    with taskset, the server pinned to the other (lab-notes-server.md); without wrk, an asyncio load
    generator in its own process does the same job.
(b) Storage: the cost of encryption. Single-row insert transactions/s and point reads/s through
    `appliance.storage.database.connect` (SQLCipher) and through stdlib sqlite3 with the same pragmas,
    each library in its own process and on its own file.

Options: --duration S (per round, default 8), --rounds N (2), --connections C (32), --only http|storage,
--loadgen wrk|asyncio. Numbers on a shared 2-core machine are noisy; compare ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results.json"
PY = sys.executable
HIGH_LIMITS = {"APPLIANCE_LIMITS_RATE_PER_SECOND": "1000000000", "APPLIANCE_LIMITS_RATE_BURST": "1000000000"}


# -- helpers -------------------------------------------------------------------------------------
def cpus() -> tuple[list[str], list[str]]:
    """taskset prefixes for (server, load generator): core 0 and core 1, or nothing."""
    n = len(os.sched_getaffinity(0))
    if shutil.which("taskset") and n >= 2:
        return ["taskset", "-c", "0"], ["taskset", "-c", "1"]
    return [], []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_health(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:  # noqa: S310 (loopback http)
                if r.status in (200, 404):
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def running(cmd: list[str], health: str, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_health(health, process)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def ensure_wrk() -> bool:
    if shutil.which("wrk"):
        return True
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("bench: installing wrk from Debian (apt-get install -y wrk)", file=sys.stderr)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], capture_output=True, check=False)
    return shutil.which("wrk") is not None


# -- load generators -----------------------------------------------------------------------------
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * _UNITS[m.group(2)]


def run_wrk(pin: list[str], url: str, headers: dict[str, str], conns: int, seconds: float) -> dict[str, Any]:
    cmd = [*pin, "wrk", "-t1", f"-c{conns}", f"-d{max(1, round(seconds))}s", "--latency"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": _ms(re.search(r"\s50%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
        "p99_ms": _ms(re.search(r"\s99%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(1) if errors else "",
    }


async def _asyncio_load(url: str, headers: dict[str, str], conns: int, seconds: float) -> dict[str, Any]:
    m = re.match(r"http://([^:/]+):(\d+)(/.*)", url)
    assert m, url
    host, port, path = m.group(1), int(m.group(2)), m.group(3)
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode()
    latencies: list[float] = []
    bad = 0
    stop = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal bad
        reader, writer = await asyncio.open_connection(host, port)
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length:\s*(\d+)", head)
            await reader.readexactly(int(length.group(1)) if length else 0)
            latencies.append(time.perf_counter() - t0)
            if not head.startswith(b"HTTP/1.1 2"):
                bad += 1
        writer.close()

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(conns)))
    elapsed = time.monotonic() - started
    latencies.sort()
    q = statistics.quantiles(latencies, n=100)
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
        "non_2xx": bad,
        "socket_errors": "",
    }


def run_asyncio(
    pin: list[str], url: str, headers: dict[str, str], conns: int, seconds: float
) -> dict[str, Any]:
    """The asyncio generator in its own (pinned) process, so it never shares a core with the server."""
    cmd = [*pin, PY, __file__, "_loadgen", url, json.dumps(headers), str(conns), str(seconds)]
    result: dict[str, Any] = json.loads(
        subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    )
    return result


# -- (a) HTTP ------------------------------------------------------------------------------------
def hello_main(port: int) -> None:
    """A bare Litestar app under the same uvicorn settings as `appliance serve` (server/serve.py)."""
    import uvicorn
    from litestar import Litestar, get

    @get("/hello", sync_to_thread=False)
    def hello() -> dict[str, str]:
        return {"hello": "world"}

    app = Litestar([hello], openapi_config=None)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        workers=1,
        lifespan="off",
        access_log=False,
        log_level="warning",
        server_header=False,
    )


def bench_http(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    server_pin, load_pin = cpus()
    use_wrk = args.loadgen == "wrk" and ensure_wrk()
    load = run_wrk if use_wrk else run_asyncio
    conns, seconds = args.connections, args.duration

    data_dir = work / "data"
    init = subprocess.run(
        [PY, "-m", "appliance", "init", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        check=True,
    )
    key = re.search(r"(COASSEMBLE:\d+:[0-9a-f]{64})", init.stdout).group(1)  # type: ignore[union-attr]

    def measure(name: str, cmd: list[str], env: dict[str, str], url: str, headers: dict[str, str]) -> Any:
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        health = url.rsplit("/", 3)[0] + "/health" if "/v1/" in url else url
        rounds = []
        with running([*server_pin, *cmd], health, env, work / f"{name}.log") as process:
            load(load_pin, url, headers, conns, min(2.0, seconds))  # warm-up
            for _ in range(args.rounds):
                before = cpu_seconds(process.pid)
                r = load(load_pin, url, headers, conns, seconds)
                # Requests per second of server CPU: the cost per request, steady under background load.
                r["per_cpu_s"] = r["rps"] * seconds / max(1e-9, cpu_seconds(process.pid) - before)
                rounds.append(r)
        for r in rounds:
            if r["non_2xx"]:
                print(f"bench: WARNING {name}: {r['non_2xx']} non-2xx responses", file=sys.stderr)
        return {
            "rounds": rounds,
            "rps": statistics.mean(r["rps"] for r in rounds),
            "p99_ms": statistics.mean(r["p99_ms"] for r in rounds),
            "per_cpu_s": max(r["per_cpu_s"] for r in rounds),
        }

    results: dict[str, Any] = {}
    port = free_port()
    results["litestar_hello"] = measure(
        "litestar_hello",
        [PY, __file__, "_hello", str(port)],
        dict(os.environ),
        f"http://127.0.0.1:{port}/hello",
        {},
    )
    for sync in ("FULL", "NORMAL"):
        port = free_port()
        env = {**os.environ, **HIGH_LIMITS, "APPLIANCE_STORAGE_SYNCHRONOUS": sync}
        results[f"appliance_{sync.lower()}"] = measure(
            f"appliance_{sync.lower()}",
            [PY, "-m", "appliance", "serve", "--data-dir", str(data_dir), "--port", str(port), "--workers", "1"],
            env,
            f"http://127.0.0.1:{port}/v1/headless/courses",
            {"Authorization": key},
        )
    base = results["litestar_hello"]["rps"]
    for sync in ("full", "normal"):
        r = results[f"appliance_{sync}"]
        r["ratio_to_hello"] = r["rps"] / base
        r["ratio_to_hello_per_cpu_s"] = r["per_cpu_s"] / results["litestar_hello"]["per_cpu_s"]
    results["settings"] = {
        "loadgen": "wrk -t1" if use_wrk else "asyncio",
        "connections": conns,
        "seconds": seconds,
        "rounds": args.rounds,
        "server_cpu": " ".join(server_pin) or "unpinned",
        "loadgen_cpu": " ".join(load_pin) or "unpinned",
    }
    return results


# -- (b) storage ---------------------------------------------------------------------------------
def storage_main(lib: str, path: Path, synchronous: str, seconds: float) -> None:
    """One library, one file, in this process: insert transactions/s, then point reads/s."""
    if lib == "sqlcipher":
        from sqlcipher3 import dbapi2 as sqlcipher

        from appliance.storage.database import connect

        conn = connect(path, os.urandom(32), synchronous=synchronous)
        version = f"SQLite {sqlcipher.sqlite_version}, " + conn.execute("PRAGMA cipher_version").fetchone()[0]
    else:
        import sqlite3

        version = f"SQLite {sqlite3.sqlite_version}"

        conn = sqlite3.connect(str(path), isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA secure_delete = ON")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, created REAL NOT NULL, body TEXT NOT NULL)")
    body = "x" * 200
    n = 0
    stop = time.perf_counter() + seconds
    started, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() < stop:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (created, body) VALUES (?, ?)", (time.time(), body))
        conn.execute("COMMIT")
        n += 1
    inserts = n / (time.perf_counter() - started)
    inserts_cpu = n / max(1e-9, time.process_time() - cpu)
    # Enough rows for reads to span many pages.
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO t (created, body) VALUES (?, ?)", ((time.time(), body) for _ in range(max(0, 20000 - n)))
    )
    conn.execute("COMMIT")
    rows = conn.execute("SELECT max(id) FROM t").fetchone()[0]
    rng = random.Random(1)
    n = 0
    stop = time.perf_counter() + seconds
    started, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() < stop:
        conn.execute("SELECT created, body FROM t WHERE id = ?", (rng.randint(1, rows),)).fetchone()
        n += 1
    reads = n / (time.perf_counter() - started)
    reads_cpu = n / max(1e-9, time.process_time() - cpu)
    conn.close()
    # Wall-clock rates are what a caller sees; per CPU-second rates are the cost of the work itself and
    # hardly move when other processes compete for the core, so the encryption ratio uses those.
    result = {
        "insert_tps": inserts,
        "point_reads_per_s": reads,
        "insert_per_cpu_s": inserts_cpu,
        "point_reads_per_cpu_s": reads_cpu,
        "rows": rows,
        "version": version,
    }
    print(json.dumps(result))


def bench_storage(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    pin, _ = cpus()
    seconds = max(1.0, args.duration / 2)
    results: dict[str, Any] = {}
    libs = ("sqlcipher", "sqlite3")
    for sync in ("FULL", "NORMAL"):
        per_lib: dict[str, Any] = {}
        rounds: dict[str, list[dict[str, Any]]] = {lib: [] for lib in libs}
        # Interleaved (A B A B), so background load on a shared machine hits both libraries alike.
        for i in range(args.rounds):
            for lib in libs:
                print(f"bench: storage {lib} synchronous={sync} round {i + 1}", file=sys.stderr, flush=True)
                path = work / f"{lib}-{sync}-{i}.db"
                cmd = [*pin, PY, __file__, "_storage", lib, str(path), sync, str(seconds)]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=REPO).stdout
                rounds[lib].append(json.loads(out))
        for lib in libs:
            # Best of the rounds: background load only ever slows a round down.
            per_lib[lib] = {"rounds": rounds[lib], "version": rounds[lib][0]["version"]}
            for metric in ("insert_tps", "point_reads_per_s", "insert_per_cpu_s", "point_reads_per_cpu_s"):
                per_lib[lib][metric] = max(r[metric] for r in rounds[lib])
        a, b = per_lib["sqlcipher"], per_lib["sqlite3"]
        per_lib["ratio_insert"] = a["insert_per_cpu_s"] / b["insert_per_cpu_s"]
        per_lib["ratio_read"] = a["point_reads_per_cpu_s"] / b["point_reads_per_cpu_s"]
        per_lib["ratio_insert_wall"] = a["insert_tps"] / b["insert_tps"]
        per_lib["ratio_read_wall"] = a["point_reads_per_s"] / b["point_reads_per_s"]
        results[sync.lower()] = per_lib
    return results


# -- report --------------------------------------------------------------------------------------
def summary(results: dict[str, Any]) -> str:
    lines = []
    http = results.get("http")
    if http:
        s = http["settings"]
        lines.append(
            f"HTTP ({s['loadgen']}, {s['connections']} connections, {s['rounds']} x {s['seconds']}s; "
            f"server {s['server_cpu']}, load {s['loadgen_cpu']})"
        )
        lines.append(
            f"  {'target':<32}{'req/s':>7}  {'(rounds)':<14}{'p99 ms':>7}{'vs hello':>9}"
            f"{'req/CPU-s':>11}{'vs hello':>9}"
        )
        for name, label in (
            ("litestar_hello", "bare Litestar hello"),
            ("appliance_full", "appliance courses, sync FULL"),
            ("appliance_normal", "appliance courses, sync NORMAL"),
        ):
            r = http[name]
            per = ", ".join(f"{x['rps']:.0f}" for x in r["rounds"])
            ratio = f"{r['ratio_to_hello']:.2f}" if "ratio_to_hello" in r else "1.00"
            cpu_ratio = f"{r['ratio_to_hello_per_cpu_s']:.2f}" if "ratio_to_hello" in r else "1.00"
            lines.append(
                f"  {label:<32}{r['rps']:>7.0f}  {'(' + per + ')':<14}{r['p99_ms']:>7.1f}{ratio:>9}"
                f"{r['per_cpu_s']:>11.0f}{cpu_ratio:>9}"
            )
    storage = results.get("storage")
    if storage:
        lines.append(
            "Storage, SQLCipher vs stdlib sqlite3 (best of rounds; per second of wall time / of CPU time)"
        )
        lines.append(f"  {'sync':<8}{'library':<11}{'inserts/s':>18}{'point reads/s':>20}")
        for sync, r in storage.items():
            for lib in ("sqlcipher", "sqlite3"):
                x = r[lib]
                ins = f"{x['insert_tps']:.0f} / {x['insert_per_cpu_s']:.0f}"
                rd = f"{x['point_reads_per_s']:.0f} / {x['point_reads_per_cpu_s']:.0f}"
                lines.append(f"  {sync.upper():<8}{lib:<11}{ins:>18}{rd:>20}  {x['version']}")
            ins = f"{r['ratio_insert_wall']:.2f} / {r['ratio_insert']:.2f}"
            rd = f"{r['ratio_read_wall']:.2f} / {r['ratio_read']:.2f}"
            lines.append(f"  {sync.upper():<8}{'ratio':<11}{ins:>18}{rd:>20}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Internal entry points (each runs in its own process).
    if argv and argv[0] == "_hello":
        hello_main(int(argv[1]))
        return 0
    if argv and argv[0] == "_storage":
        sys.path.insert(0, str(REPO))
        storage_main(argv[1], Path(argv[2]), argv[3], float(argv[4]))
        return 0
    if argv and argv[0] == "_loadgen":
        result = asyncio.run(_asyncio_load(argv[1], json.loads(argv[2]), int(argv[3]), float(argv[4])))
        print(json.dumps(result))
        return 0

    parser = argparse.ArgumentParser(description="appliance benchmarks")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per HTTP round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--only", choices=["http", "storage"])
    parser.add_argument("--loadgen", choices=["wrk", "asyncio"], default="wrk")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    results: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_at_start": os.getloadavg(),
        },
    }
    with tempfile.TemporaryDirectory(prefix="appliance-bench-") as tmp:
        work = Path(tmp)
        if args.only in (None, "http"):
            results["http"] = bench_http(args, work)
        if args.only in (None, "storage"):
            results["storage"] = bench_storage(args, work)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    load = results["machine"]["load_average_at_start"]
    print(f"load average at start: {load[0]:.1f} on {os.cpu_count()} CPUs (other work skews the numbers)")
    print(summary(results))
    print(f"results: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
