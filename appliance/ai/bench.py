"""P1: raw llama-cpp-python free decoding against the appliance's constrained decoding, like for like.

    .venv/bin/python -m appliance.ai.bench [--models NAME ...] [--rounds 5] [--tokens 300] [--out bench/results-ai.json]

Both sides get the same chat prompt (the same rendered text, with a per-round nonce at its very
start so that neither side can reuse a cached prefix), the same sampling chain and seed, the same
model file and thread count, and produce exactly ``--tokens`` tokens (the schema asks for more
text than that, so the constrained side is cut at the same length; the free side ignores its
end-of-generation token). Rounds interleave the two sides; the summary gives medians and the ratio
of the medians of tokens per second over the whole call (prompt included on both sides):

- ``raw``: ``llama_cpp.Llama.generate`` (llama-cpp-python's own loop, no grammar);
- ``appliance``: ``LocalEngine.complete(schema=...)``: the batched context, the lazy grammar and
  jump-forward (tokens the schema forces are evaluated in one batch without a sampling step).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from .cpu_build import import_llama
from .engine import EngineStatus, Message, SamplingParams
from .local import LocalEngine
from .models import default_models_dir, load_manifest

SYSTEM = "You are an instructional designer. You write short, clear e-learning courses."
USER = (
    "Create a course on phishing awareness for new employees: 8 screens, each with a type (intro, content, "
    "quiz or summary), a title and a body of 3-4 sentences. Answer as JSON with keys title and screens."
)
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 80},
        "screens": {
            "type": "array",
            "minItems": 8,
            "maxItems": 8,
            "items": {
                "type": "object",
                "properties": {
                    "type": {"enum": ["intro", "content", "quiz", "summary"]},
                    "title": {"type": "string", "maxLength": 80},
                    "body": {"type": "string", "minLength": 120, "maxLength": 600},
                },
                "required": ["type", "title", "body"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["title", "screens"],
    "additionalProperties": False,
}
SAMPLING = SamplingParams(temperature=0.3, top_k=40, top_p=0.9, min_p=0.05, repeat_penalty=1.1)


def _messages(nonce: int) -> list[Message]:
    return [{"role": "system", "content": f"[{nonce}] {SYSTEM}"}, {"role": "user", "content": USER}]


def _raw_round(llm: Any, prompt: str, tokens: int, seed: int) -> dict[str, float]:
    ids = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
    llm.set_seed(seed)
    t0 = time.monotonic()
    n = 0
    for _tok in llm.generate(ids, top_k=SAMPLING.top_k, top_p=SAMPLING.top_p, min_p=SAMPLING.min_p,
                             temp=SAMPLING.temperature, repeat_penalty=SAMPLING.repeat_penalty, reset=True):
        n += 1
        if n >= tokens:
            break
    wall = time.monotonic() - t0
    return {"tokens": n, "seconds": wall, "tok_s": n / wall}


def _appliance_round(engine: LocalEngine, nonce: int, tokens: int, seed: int) -> dict[str, float]:
    t0 = time.monotonic()
    c = engine.complete(_messages(nonce), schema=SCHEMA, max_tokens=tokens,
                        sampling=SamplingParams(**{**SAMPLING.__dict__, "seed": seed}))
    wall = time.monotonic() - t0
    n = c.stats.completion_tokens
    return {"tokens": n, "seconds": wall, "tok_s": n / wall, "forced": c.stats.forced_tokens,
            "cached": c.stats.cached_tokens, "rejections": c.stats.grammar_rejections}


def bench_model(name: str, models_dir: Path, rounds: int, threads: int, tokens: int) -> dict[str, Any]:
    llama_cpp = import_llama()  # the libraries the engine loads (ai.cpu_build "auto")

    n_ctx = load_manifest(models_dir)[name].n_ctx
    engine = LocalEngine(name, models_dir=models_dir, n_threads=threads, parallel=1, kv_cells=n_ctx)
    if engine.wait_ready(120) != EngineStatus.READY:
        raise SystemExit(f"{name}: {engine.info()}")
    path = engine.spec.path(models_dir) if engine.spec else None
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=engine.n_ctx, n_threads=threads, n_threads_batch=threads,
                          n_batch=512, verbose=False)
    rows: dict[str, list[dict[str, float]]] = {"raw": [], "appliance": []}
    try:
        for r in range(rounds):
            seed = 1000 + r
            prompt, _bos = engine._formatter(_messages(r))  # the very text the appliance decodes
            order = ("raw", "appliance") if r % 2 == 0 else ("appliance", "raw")
            for side in order:
                if side == "raw":
                    rows["raw"].append(_raw_round(llm, prompt, tokens, seed))
                else:
                    rows["appliance"].append(_appliance_round(engine, r, tokens, seed))
    finally:
        llm.close()
        engine.close()
    med = {side: statistics.median(x["tok_s"] for x in rows[side]) for side in rows}
    return {
        "model": name,
        "threads": threads,
        "tokens": tokens,
        "rounds": rows,
        "summary": {
            "raw_tok_s_median": round(med["raw"], 2),
            "appliance_tok_s_median": round(med["appliance"], 2),
            "ratio_appliance_over_raw": round(med["appliance"] / med["raw"], 3),
            "appliance_forced_median": statistics.median(x["forced"] for x in rows["appliance"]),
        },
    }


def cpu_model() -> str:
    """The CPU's name, for result files (benchmarks compare like with like)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="*", help="manifest names (default: all installed)")
    ap.add_argument("--models-dir", default=None)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="bench/results-ai.json")
    args = ap.parse_args(argv)
    d = Path(args.models_dir) if args.models_dir else default_models_dir()
    specs = load_manifest(d)
    names = args.models or [n for n, s in specs.items() if s.path(d).is_file()]
    load_before = os.getloadavg()
    results = [bench_model(n, d, args.rounds, args.threads, args.tokens) for n in names]
    out = {
        "benchmark": "P1 free (raw llama-cpp-python) vs constrained (appliance), same prompt/seed/length",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpu": cpu_model(),
        "nproc": os.cpu_count(),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "results": results,
    }
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    for r in results:
        print(r["model"], json.dumps(r["summary"]))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
