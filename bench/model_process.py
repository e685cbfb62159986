"""What the model process costs and what it buys (docs/ai.md, "Model process").

    .venv/bin/python bench/model_process.py [--model smollm2-135m-instruct] [--rounds 4] [--tokens 64]
                                            [--api-rounds 2] [--seconds 8] [--settle 5]
                                            [--out bench/results-model-process.json]

(a) Overhead: the same short free-text generation (fixed seed) through LocalEngine in this process and
    through ProcessEngine (a model process of its own, the same options), interleaved round by round;
    tokens per second end to end at the caller (prompt, decoding and, for the process, the socket) and
    as the engine measures its own decoding. Ratio of the medians, process / in-process.
(b) Interference: the real server (`appliance serve`, data directory from `appliance init`) with
    `ai.process` false and true, alternately: p50/p99 of GET /v1/headless/courses from 4 client threads,
    idle and while a 3-screen course is generated.
The machine is shared and noisy: compare ratios within one run, not absolutes across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance.ai.bench import cpu_model
from appliance.ai.engine import SamplingParams
from appliance.ai.local import LocalEngine
from appliance.ai.models import REPO_MODELS_DIR
from appliance.ai.process_engine import ProcessEngine
from tests.helpers import init_data_dir, start_server

MESSAGES = [{"role": "user", "content": "Explain in a few sentences why ladders need three points of contact."}]


def overhead(model: str, rounds: int, tokens: int) -> dict[str, Any]:
    options = {"model": model, "models_dir": str(REPO_MODELS_DIR), "n_threads": None, "n_ctx": None,
               "queue_size": 8, "timeout": 300.0, "parallel": 6, "kv_cells": None}
    local = LocalEngine(model, models_dir=REPO_MODELS_DIR, parallel=6)
    with tempfile.TemporaryDirectory() as tmp:
        remote = ProcessEngine(Path(tmp) / "run", options)
        try:
            assert local.wait_ready(120).value == "ready", local.info()
            assert remote.wait_ready(120).value == "ready", remote.info()
            rows: dict[str, list[dict[str, float]]] = {"in_process": [], "process": []}
            sampling = SamplingParams(seed=11, temperature=0.3)
            for r in range(rounds + 1):  # round 0 warms both up and is not counted
                order = [("in_process", local), ("process", remote)]
                for name, engine in order if r % 2 else reversed(order):
                    started = time.perf_counter()
                    done = engine.complete(MESSAGES, max_tokens=tokens, sampling=sampling)
                    wall = time.perf_counter() - started
                    if r:
                        rows[name].append({"wall_tps": done.stats.completion_tokens / wall,
                                           "engine_tps": done.stats.tokens_per_second,
                                           "tokens": done.stats.completion_tokens})
        finally:
            remote.close()
            local.close()

    def median(name: str, key: str) -> float:
        return round(statistics.median(x[key] for x in rows[name]), 2)

    return {
        "rounds": rows,
        "wall_tps": {n: median(n, "wall_tps") for n in rows},
        "engine_tps": {n: median(n, "engine_tps") for n in rows},
        "ratio_wall": round(median("process", "wall_tps") / median("in_process", "wall_tps"), 3),
        "ratio_engine": round(median("process", "engine_tps") / median("in_process", "engine_tps"), 3),
    }


def latencies(client: httpx.Client, seconds: float, threads: int = 4) -> list[float]:
    out: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def hammer() -> None:
        while time.monotonic() < stop:
            began = time.perf_counter()
            r = client.get("/v1/headless/courses")
            took = time.perf_counter() - began
            assert r.status_code == 200, r.text
            with lock:
                out.append(took)

    pool = [threading.Thread(target=hammer) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return out


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def interference(rounds: int, seconds: float, work: Path, settle: float) -> dict[str, Any]:
    install = init_data_dir(work / "data")
    rows: list[dict[str, Any]] = []
    for r in range(rounds):
        for process in (("false", "true") if r % 2 == 0 else ("true", "false")):
            server = start_server(install.data_dir, env={"APPLIANCE_AI_PROCESS": process})
            # start-up work (snapshots, the spare document reader) ends before "idle" is measured: with
            # the model loading in its own process, /health turns 200 while it may still be running
            time.sleep(settle)
            try:
                with server.client(install.test_key, timeout=30) as client:
                    idle = latencies(client, seconds)
                    job = client.post("/v1/headless/generate/course", headers={"Prefer": "respond-async"},
                                      json={"prompt": "Fire safety in a warehouse", "screenCount": 3}).json()["id"]
                    time.sleep(1.0)  # the plan has started
                    busy = latencies(client, seconds)
                    state = client.get(f"/v1/headless/jobs/{job}").json()["status"]
                    client.post(f"/v1/headless/jobs/{job}/cancel")
            finally:
                server.stop()
            rows.append({"process": process == "true", "idle_p50_ms": p(idle, 0.5), "idle_p99_ms": p(idle, 0.99),
                         "busy_p50_ms": p(busy, 0.5), "busy_p99_ms": p(busy, 0.99), "requests_busy": len(busy),
                         "job_still_running": state == "running"})
            print(rows[-1], flush=True)

    def med(flag: bool, key: str) -> float:
        return round(statistics.median(x[key] for x in rows if x["process"] is flag), 1)

    keys = ("idle_p99_ms", "busy_p99_ms", "busy_p50_ms", "requests_busy")
    return {"rounds": rows, "in_process": {k: med(False, k) for k in keys}, "process": {k: med(True, k) for k in keys}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--api-rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds between a server's start and idle")
    parser.add_argument("--out", default=str(Path(__file__).with_name("results-model-process.json")))
    args = parser.parse_args()
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu": cpu_model(), "nproc": os.cpu_count(),
        "load_before": os.getloadavg(), "model": args.model,
    }
    result["overhead"] = overhead(args.model, args.rounds, args.tokens)
    print(json.dumps({k: v for k, v in result["overhead"].items() if k != "rounds"}), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        result["interference"] = interference(args.api_rounds, args.seconds, Path(tmp), args.settle)
    result["load_after"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("overhead", "interference")}))
    print(json.dumps(result["interference"]["in_process"]), json.dumps(result["interference"]["process"]))


if __name__ == "__main__":
    main()
