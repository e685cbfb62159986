"""HTTP hot path and worker processes (`make bench`, or `.venv/bin/python bench/http_workers.py`).

For each worker count (default 1 and 2), interleaved round by round:
- a bare Litestar hello world on the same server software as `appliance serve` (uvicorn, uvloop,
  httptools, no access log), its workers pre-forked on one listening socket as `serve --workers N` does;
- the authenticated `GET /v1/headless/courses` of `appliance serve --workers N` (rate limit raised);
- learner progress writes, the player's `POST /embed/api/track` (an embed session's Bearer token;
  audit and change capture for point-in-time recovery on, as always), with raw single-row SQLCipher
  transactions/s measured in the same run (bench/run.py's storage probe, synchronous FULL).
Load: `wrk -t1 -cC` (a Lua script for the POST). Results: bench/results-http-<date>.json with the CPU
model, nproc and the load average before and after. On a shared 2-core machine the load generator
takes one core: compare ratios measured in the same run, not absolutes.

Options: --duration S (per measurement, default 5), --rounds N (1), --connections C (32),
--workers 1,2.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import HIGH_LIMITS, PY, REPO, _ms, cpu_seconds, ensure_wrk, free_port, run_wrk, running

TRACK_LUA = """wrk.method = "POST"
wrk.body = '{"event": "progress", "progress": 40}'
wrk.headers["Content-Type"] = "application/json"
"""


def hello_child(fd: int) -> None:
    import asyncio

    import uvicorn
    import uvloop
    from litestar import Litestar, get

    @get("/hello", sync_to_thread=False)
    def hello() -> dict[str, str]:
        return {"hello": "world"}

    app = Litestar([hello], openapi_config=None)
    config = uvicorn.Config(
        app, loop="uvloop", http="httptools", lifespan="off", access_log=False, log_level="warning", server_header=False
    )
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(uvicorn.Server(config).serve(sockets=[socket.socket(fileno=fd)]))


def hello_workers(port: int, workers: int) -> None:
    """The listening socket bound once, `workers` processes serving it (as server.workers does)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    sock.set_inheritable(True)
    # the benchmark stops this process with SIGTERM: leave through `finally`, which stops the children
    signal.signal(signal.SIGTERM, lambda _number, _frame: sys.exit(0))
    children = [
        subprocess.Popen([PY, __file__, "_hello_child", str(sock.fileno())], pass_fds=(sock.fileno(),))
        for _ in range(workers)
    ]
    try:
        for child in children:
            child.wait()
    finally:
        for child in children:
            child.terminate()


def all_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and its children (the workers)."""
    total = cpu_seconds(pid)
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        for child in children.read_text().split():
            try:
                total += all_cpu_seconds(int(child))
            except (FileNotFoundError, ProcessLookupError):
                pass
    return total


def wrk(url: str, headers: dict[str, str], conns: int, seconds: float, script: Path | None = None) -> dict[str, Any]:
    if script is None:
        return run_wrk([], url, headers, conns, seconds)
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{max(1, round(seconds))}s", "--latency", "-s", str(script)]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p99_ms": _ms(re.search(r"\s99%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def embed_session(base: str, key: str) -> str:
    import httpx

    with httpx.Client(base_url=base, headers={"Authorization": key}, timeout=30) as api:
        url = api.post("/v1/headless/embed/course", json={"action": "view", "courseId": 1, "identifier": "bench-1"})
        url.raise_for_status()
        session = api.post("/embed/api/session", json={"token": url.text.rsplit("/", 1)[1]})
        session.raise_for_status()
        return f"Bearer {session.json()['session']}"


def raw_sqlcipher_tps(work: Path, seconds: float) -> float:
    path = work / f"raw-{time.monotonic_ns()}.db"
    cmd = [PY, str(REPO / "bench" / "run.py"), "_storage", "sqlcipher", str(path), "FULL", str(seconds)]
    result = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    return float(result["insert_tps"])


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_hello_child":
        hello_child(int(argv[1]))
        return 0
    if argv and argv[0] == "_hello":
        hello_workers(int(argv[1]), int(argv[2]))
        return 0
    parser = argparse.ArgumentParser(description="HTTP hot path and worker processes")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    if not ensure_wrk():
        print("bench: wrk is needed (apt-get install wrk)", file=sys.stderr)
        return 1
    counts = [int(n) for n in args.workers.split(",")]
    conns, seconds = args.connections, args.duration
    results: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpu_model": cpu_model(), "nproc": os.cpu_count(), "python": platform.python_version(),
                    "load_average_before": os.getloadavg()},
        "settings": {"loadgen": "wrk -t1", "connections": conns, "seconds": seconds, "rounds": args.rounds},
        "rounds": [],
    }
    with tempfile.TemporaryDirectory(prefix="appliance-bench-http-") as tmp:
        work = Path(tmp)
        data_dir = work / "data"
        init = subprocess.run([PY, "-m", "appliance", "init", "--data-dir", str(data_dir)],
                              capture_output=True, text=True, check=True)
        key = re.search(r"(COASSEMBLE:\d+:[0-9a-f]{64})", init.stdout).group(1)  # type: ignore[union-attr]
        lua = work / "track.lua"
        lua.write_text(TRACK_LUA)
        env = {**os.environ, **HIGH_LIMITS}
        for round_no in range(args.rounds):
            for n in counts:
                print(f"bench: round {round_no + 1}, {n} worker(s) ...", file=sys.stderr, flush=True)
                row: dict[str, Any] = {"workers": n, "load_average": os.getloadavg()}
                port = free_port()
                hello_url = f"http://127.0.0.1:{port}/hello"
                with running([PY, __file__, "_hello", str(port), str(n)], hello_url, env, work / "hello.log") as process:
                    wrk(hello_url, {}, conns, 2.0)  # warm-up
                    before, started = all_cpu_seconds(process.pid), time.monotonic()
                    row["hello"] = wrk(hello_url, {}, conns, seconds)
                    row["hello"]["server_cpu_s_per_s"] = (all_cpu_seconds(process.pid) - before) / (time.monotonic() - started)
                    row["hello"]["server_cpu_ms_per_request"] = 1000 * row["hello"]["server_cpu_s_per_s"] / row["hello"]["rps"]
                port = free_port()
                base = f"http://127.0.0.1:{port}"
                cmd = [PY, "-m", "appliance", "serve", "--data-dir", str(data_dir), "--port", str(port), "--workers", str(n)]
                with running(cmd, f"{base}/health", env, work / f"serve-{n}.log") as process:
                    bearer = embed_session(base, key)
                    for name, url, headers, script in (
                        ("courses", f"{base}/v1/headless/courses", {"Authorization": key}, None),
                        ("track", f"{base}/embed/api/track", {"Authorization": bearer}, lua),
                    ):
                        wrk(url, headers, conns, 2.0, script)  # warm-up
                        before, started = all_cpu_seconds(process.pid), time.monotonic()
                        r = wrk(url, headers, conns, seconds, script)
                        r["server_cpu_s_per_s"] = (all_cpu_seconds(process.pid) - before) / (time.monotonic() - started)
                        r["server_cpu_ms_per_request"] = 1000 * r["server_cpu_s_per_s"] / r["rps"]
                        row[name] = r
                row["raw_sqlcipher_tps"] = raw_sqlcipher_tps(work, min(3.0, seconds))
                row["courses_over_hello"] = row["courses"]["rps"] / row["hello"]["rps"]
                # requests per server CPU-second, the steadier number on a shared machine
                row["courses_over_hello_per_cpu_s"] = (
                    row["hello"]["server_cpu_ms_per_request"] / row["courses"]["server_cpu_ms_per_request"]
                )
                row["track_over_raw_sqlcipher"] = row["track"]["rps"] / row["raw_sqlcipher_tps"]
                results["rounds"].append(row)
                print(f"bench: {json.dumps(row)}", file=sys.stderr, flush=True)
    summary: dict[str, Any] = {}
    for n in counts:
        rows = [r for r in results["rounds"] if r["workers"] == n]
        summary[f"workers_{n}"] = {
            k: statistics.mean(r[k] for r in rows)
            for k in ("courses_over_hello", "courses_over_hello_per_cpu_s", "track_over_raw_sqlcipher")
        } | {
            "hello_rps": statistics.mean(r["hello"]["rps"] for r in rows),
            "courses_rps": statistics.mean(r["courses"]["rps"] for r in rows),
            "courses_p99": [r["courses"]["p99_ms"] for r in rows],
            "track_rps": statistics.mean(r["track"]["rps"] for r in rows),
            "raw_sqlcipher_tps": statistics.mean(r["raw_sqlcipher_tps"] for r in rows),
        }
    if len(counts) >= 2:
        a, b = counts[0], counts[1]
        summary[f"courses_rps_{b}_over_{a}_workers"] = summary[f"workers_{b}"]["courses_rps"] / summary[f"workers_{a}"]["courses_rps"]
    results["summary"] = summary
    results["machine"]["load_average_after"] = os.getloadavg()
    output = args.output or REPO / "bench" / f"results-http-{time.strftime('%Y-%m-%d')}.json"
    output.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    print(f"results: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
