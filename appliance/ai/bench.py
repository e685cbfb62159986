"""Benchmark free vs schema-constrained decoding on the installed models.

    .venv/bin/python -m appliance.ai.bench [--models NAME ...] [--rounds 3] [--stock] [--out bench/results-ai.json]

tok/s = (sampled tokens - 1) / (first token to end), as in the lab notes. Modes, interleaved per
round with the same seed: ``free`` (our loop, no grammar), ``constrained`` (our lazy grammar
path) and, with ``--stock``, llama-cpp-python's stock ``create_chat_completion`` with
``response_format`` (full-vocabulary grammar on every token) for comparison.
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

from .engine import EngineStatus, SamplingParams
from .local import LocalEngine, parse_and_validate
from .models import default_models_dir, load_manifest

SYSTEM = "You are an instructional designer. You write short, clear e-learning courses."
USER = (
    "Create a short course outline on phishing awareness for new employees: 5 screens, each with a title "
    "and 2-3 sentences of body text"
)
JSON_SUFFIX = (
    ". Answer as JSON with keys title and screens; each screen has type (intro, content, quiz or summary), "
    "title and body."
)
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "screens": {
            "type": "array",
            "minItems": 5,
            "maxItems": 5,
            "items": {
                "type": "object",
                "properties": {
                    "type": {"type": "string", "enum": ["intro", "content", "quiz", "summary"]},
                    "title": {"type": "string"},
                    "body": {"type": "string"},
                },
                "required": ["type", "title", "body"],
            },
        },
    },
    "required": ["title", "screens"],
}


def _stock(model_path: Path, n_ctx: int, n_threads: int, seed: int, max_tokens: int) -> dict[str, Any]:
    import llama_cpp

    llm = llama_cpp.Llama(
        model_path=str(model_path),
        n_ctx=n_ctx,
        n_threads=n_threads,
        n_threads_batch=n_threads,
        verbose=False,
        seed=seed,
    )
    try:
        msgs: Any = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER + JSON_SUFFIX}]
        t_first = 0.0
        n = 0
        parts: list[str] = []
        t0 = time.monotonic()
        stream: Any = llm.create_chat_completion(
            messages=msgs,
            max_tokens=max_tokens,
            temperature=0.3,
            top_p=0.9,
            repeat_penalty=1.1,
            stream=True,
            response_format={"type": "json_object", "schema": SCHEMA},
        )
        for chunk in stream:
            delta = chunk["choices"][0]["delta"].get("content")
            if delta:
                if not t_first:
                    t_first = time.monotonic()
                n += 1
                parts.append(delta)
        t_end = time.monotonic()
        text = "".join(parts)
        try:
            parse_and_validate(text, SCHEMA)
            valid = True
        except Exception:
            valid = False
        return {
            "tokens": n,
            "tok_s": (n - 1) / (t_end - t_first) if n > 1 else 0.0,
            "wall_s": t_end - t0,
            "valid": valid,
        }
    finally:
        llm.close()


def bench_model(
    name: str, models_dir: Path, rounds: int, n_threads: int, stock: bool, max_tokens: int
) -> dict[str, Any]:
    spec = load_manifest(models_dir)[name]
    n_ctx = min(spec.n_ctx, 4096)
    t0 = time.monotonic()
    eng = LocalEngine(
        name, models_dir=models_dir, n_threads=n_threads, n_ctx=n_ctx, queue_size=2, timeout=900
    )
    if eng.wait_ready(300) != EngineStatus.READY:
        raise SystemExit(f"{name}: {eng.info()['error']}")
    load_s = time.monotonic() - t0
    runs: dict[str, list[dict[str, Any]]] = {"free": [], "constrained": []}
    if stock:
        runs["stock_constrained"] = []
    try:
        for i in range(rounds):
            seed = 1000 + i
            sp = SamplingParams(seed=seed)
            c = eng.complete(
                [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}],
                max_tokens=max_tokens,
                sampling=sp,
            )
            runs["free"].append(
                {
                    "tokens": c.stats.completion_tokens,
                    "tok_s": c.stats.tokens_per_second,
                    "wall_s": c.stats.prompt_seconds + c.stats.gen_seconds,
                    "prompt_tok_s": c.stats.prompt_tokens / c.stats.prompt_seconds,
                    "stop": c.stats.stop_reason,
                }
            )
            c = eng.complete(
                [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER + JSON_SUFFIX}],
                schema=SCHEMA,
                max_tokens=max(max_tokens, 1200),
                sampling=sp,
            )
            try:
                parse_and_validate(c.text, SCHEMA, c.stats.stop_reason)
                valid = True
            except Exception:
                valid = False
            runs["constrained"].append(
                {
                    "tokens": c.stats.completion_tokens,
                    "tok_s": c.stats.tokens_per_second,
                    "wall_s": c.stats.prompt_seconds + c.stats.gen_seconds,
                    "rejections": c.stats.grammar_rejections,
                    "stop": c.stats.stop_reason,
                    "valid": valid,
                }
            )
            if stock:
                runs["stock_constrained"].append(_stock(spec.path(models_dir), n_ctx, n_threads, seed, 1200))
            print(
                f"{name} round {i + 1}/{rounds}: "
                + ", ".join(f"{k} {v[-1]['tok_s']:.1f} tok/s" for k, v in runs.items()),
                flush=True,
            )
    finally:
        eng.close()
    summary = {
        k: {
            "median_tok_s": round(statistics.median(r["tok_s"] for r in v), 2),
            "mean_tokens": round(statistics.mean(r["tokens"] for r in v), 1),
        }
        for k, v in runs.items()
    }
    free = summary["free"]["median_tok_s"]
    summary["constrained"]["ratio_to_free"] = (
        round(summary["constrained"]["median_tok_s"] / free, 3) if free else 0
    )
    summary["constrained"]["valid"] = f"{sum(r['valid'] for r in runs['constrained'])}/{rounds}"
    if stock:
        summary["stock_constrained"]["ratio_to_free"] = (
            round(summary["stock_constrained"]["median_tok_s"] / free, 3) if free else 0
        )
    return {
        "model": name,
        "file": spec.file,
        "n_ctx": n_ctx,
        "n_threads": n_threads,
        "load_s": round(load_s, 2),
        "summary": summary,
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="*", help="manifest names (default: all installed)")
    ap.add_argument("--models-dir", default=None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--max-tokens", type=int, default=600, help="cap for free decoding")
    ap.add_argument("--stock", action="store_true", help="also run llama-cpp-python's stock grammar path")
    ap.add_argument("--out", default="bench/results-ai.json")
    args = ap.parse_args(argv)
    d = Path(args.models_dir) if args.models_dir else default_models_dir()
    specs = load_manifest(d)
    names = args.models or [n for n, s in specs.items() if s.path(d).is_file()]
    load_before = os.getloadavg()
    results = [bench_model(n, d, args.rounds, args.threads, args.stock, args.max_tokens) for n in names]
    load_after = os.getloadavg()
    date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for r in results:  # per model, since results of several runs are merged into one file
        r["date"] = date
        r["loadavg_before_after"] = [load_before, load_after]
    import llama_cpp

    out = {
        "date": date,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "llama_cpp_python": llama_cpp.__version__,
            "system_info": llama_cpp.llama_print_system_info().decode(errors="replace"),
            "loadavg_before": load_before,
            "loadavg_after": load_after,
        },
        "results": results,
    }
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():  # keep other models' results; replace the ones re-measured
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
            kept = [r for r in old.get("results", []) if r.get("model") not in names]
            out["results"] = kept + results
        except (ValueError, AttributeError):
            pass
    path.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    for r in results:
        print(r["model"], json.dumps(r["summary"]))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
