"""Cheaper quantizations of the default model: measured, not kept (docs/ai.md "Measured").

    .venv/bin/python bench/quantizations.py [--rounds 3] [--out bench/results-quantizations.json]

Requantizes the installed Q4_K_M file (llama.cpp's llama_model_quantize with allow_requantize) into
a temporary directory: Q8_0 keeps its values nearly exactly and has the simplest dot product, Q4_0
loses a little more and is half Q8_0's size. Then per round and per file, interleaved: a 128-token prompt chunk, 5-token chunks (about the cost
of a step over five sequences) and 1-token steps, medians in milliseconds. Records date, CPU,
nproc and load.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import llama_cpp

from appliance.ai.bench import cpu_model
from appliance.ai.models import resolve_model

TYPES = {"q8_0": 7, "q4_0": 2}  # llama_ftype values
TEXT = ("Phishing awareness for new employees: how to recognise a suspicious email, what to check in the sender, "
        "links and attachments, and how to report it to the security team. ") * 20


def requantize(source: Path, target: Path, ftype: int) -> None:
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype, params.allow_requantize, params.nthread = ftype, True, 2
    if llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), ctypes.byref(params)) != 0:
        raise SystemExit(f"quantizing to {target.name} failed")


def steps(path: Path) -> dict[str, float]:
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=4096, n_threads=2, n_threads_batch=2, n_batch=512, verbose=False)
    tokens = llm.tokenize(TEXT.encode())[:128]
    begin = time.perf_counter()
    llm.eval(tokens)
    prompt = time.perf_counter() - begin
    wide, narrow = [], []
    for i in range(6):
        begin = time.perf_counter()
        llm.eval(tokens[i * 5:(i + 1) * 5])
        wide.append(time.perf_counter() - begin)
    for i in range(20):
        begin = time.perf_counter()
        llm.eval([tokens[i]])
        narrow.append(time.perf_counter() - begin)
    del llm
    return {"prompt128_ms": prompt * 1000, "step5_ms": statistics.median(wide) * 1000,
            "step1_ms": statistics.median(narrow) * 1000}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="bench/results-quantizations.json")
    args = parser.parse_args()
    _spec, source = resolve_model("qwen2.5-coder-1.5b-instruct-q4_k_m")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        files = {"q4_k_m": source}
        for name, ftype in TYPES.items():
            files[name] = Path(tmp) / f"qwen-{name}.gguf"
            requantize(source, files[name], ftype)
        rounds: dict[str, list[dict[str, float]]] = {name: [] for name in files}
        for _ in range(args.rounds):
            for name, path in files.items():
                rounds[name].append(steps(path))
        sizes = {name: path.stat().st_size for name, path in files.items()}
    result = {
        "benchmark": "quantizations of the default model", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpu": cpu_model(), "nproc": os.cpu_count(), "threads": 2, "rounds": args.rounds,
        "median_ms": {name: {key: round(statistics.median(r[key] for r in rs), 1) for key in rs[0]}
                      for name, rs in rounds.items()},
        "bytes": sizes, "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["median_ms"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
