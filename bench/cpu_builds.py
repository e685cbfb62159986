"""llama.cpp CPU builds compared: the portable x86-64-v3 libraries against the AVX-512 ones.

    .venv/bin/python bench/cpu_builds.py [--rounds 5] [--out bench/results-cpu-builds.json]

Each build is a directory of llama-cpp-python's shared libraries (`build/llama-wheel.sh` installs
the portable set into the package and the AVX-512 set beside it, `appliance.ai.cpu_build`). Per
round and per build, interleaved, a fresh process with `LLAMA_CPP_LIB_PATH` set to the build loads
the default model and times a 128-token prompt chunk, 5-token chunks (about a step over five
sequences) and 1-token steps; medians in milliseconds. Records date, CPU, nproc and load.
On a CPU without every flag the AVX-512 set was compiled for (`cpu_build.AVX512_FLAGS`) that set
would die of SIGILL: it is left out and the flags it lacks are recorded, and the portable set is
still measured.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from appliance.ai import cpu_build  # noqa: E402
from appliance.ai.bench import cpu_model  # noqa: E402

CHILD = """
import json, statistics, sys, time
import llama_cpp
from appliance.ai.models import resolve_model
TEXT = ("Phishing awareness for new employees: how to recognise a suspicious email, what to check in the "
        "sender, links and attachments, and how to report it to the security team. ") * 20
_spec, path = resolve_model(sys.argv[1])
llm = llama_cpp.Llama(model_path=str(path), n_ctx=4096, n_threads=2, n_threads_batch=2, n_batch=512, verbose=False)
tokens = llm.tokenize(TEXT.encode())[:128]
begin = time.perf_counter(); llm.eval(tokens); prompt = time.perf_counter() - begin
wide, narrow = [], []
for i in range(6):
    begin = time.perf_counter(); llm.eval(tokens[i * 5:(i + 1) * 5]); wide.append(time.perf_counter() - begin)
for i in range(20):
    begin = time.perf_counter(); llm.eval([tokens[i]]); narrow.append(time.perf_counter() - begin)
print(json.dumps({"prompt128_ms": prompt * 1000, "step5_ms": statistics.median(wide) * 1000,
                  "step1_ms": statistics.median(narrow) * 1000,
                  "system_info": llama_cpp.llama_print_system_info().decode()}))
"""


def measure(library: Path, model: str) -> dict[str, object]:
    env = {**os.environ, "LLAMA_CPP_LIB_PATH": str(library)}
    out = subprocess.run([sys.executable, "-c", CHILD, model], env=env, cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct-q4_k_m")
    parser.add_argument("--out", default="bench/results-cpu-builds.json")
    args = parser.parse_args()
    builds = {"portable": cpu_build.portable_library(), "avx512": cpu_build.avx512_library()}
    missing = [name for name, path in builds.items() if path is None or not path.is_dir()]
    if missing:
        raise SystemExit(f"not installed: {missing} (run build/llama-wheel.sh)")
    lacking = sorted(cpu_build.AVX512_FLAGS - cpu_build.cpu_flags())
    if lacking:  # the AVX-512 set cannot run here: measure what can
        print(f"this CPU lacks {', '.join(lacking)}: the AVX-512 set is left out", file=sys.stderr)
        del builds["avx512"]
    load_before = os.getloadavg()
    rounds: dict[str, list[dict[str, object]]] = {name: [] for name in builds}
    for r in range(args.rounds):
        order = list(builds) if r % 2 == 0 else list(reversed(builds))
        for name in order:
            path = builds[name]
            assert path is not None
            rounds[name].append({**measure(path, args.model), "loadavg": os.getloadavg()[0]})
            print(name, {k: round(v, 1) for k, v in rounds[name][-1].items() if isinstance(v, float)}, flush=True)
    keys = ("prompt128_ms", "step5_ms", "step1_ms")
    median = {name: {key: round(statistics.median(float(r[key]) for r in rs), 1) for key in keys}  # type: ignore[arg-type]
              for name, rs in rounds.items()}
    result = {
        "benchmark": "llama.cpp CPU builds", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpu": cpu_model(), "nproc": os.cpu_count(), "threads": 2, "model": args.model, "rounds": rounds,
        "median_ms": median,
        "avx512_over_portable": {key: round(median["avx512"][key] / median["portable"][key], 3) for key in keys}
        if "avx512" in median else None,
        "avx512_flags_lacking": lacking,
        "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"median_ms": median, "ratio": result["avx512_over_portable"]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
