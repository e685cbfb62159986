"""P2 and concurrency: course generation with the default model on 2 threads.

    .venv/bin/python bench/course.py [--model qwen2.5-coder-1.5b-instruct-q4_k_m] [--screens 10] [--rounds 3]
                                     [--concurrency 4 --concurrent-screens 3] [--out bench/results-course.json]

P2: one course of --screens screens; per round the time to the outline (the plan's first line, when
the first planned screen starts), to the first complete screen, to the whole course, the tokens
generated (sampled + forced) and read, and the aggregate tokens per second; medians over rounds.
Concurrency: --concurrency courses of --concurrent-screens screens started together, against one such
course alone, in interleaved rounds; the ratio of the medians (target <= 2.5).
--company A,B (e.g. 4,0): P2 rounds interleaved over these values of the batch decoder's
`urgent_company` (how many sequences decode beside a course's plan; its opening screen runs alone); medians
per value under "p2_by_company", the first value's under "p2". Each round also reports
`modeled_seconds`: its llama_decode calls priced at 12 ms + 17 ms per token (this machine's quiet
step costs, docs/ai.md), a number a loaded machine does not move.
Every round uses the same prompt; the date, CPU model, nproc and load averages are recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance.ai.bench import cpu_model
from appliance.ai.config import AIConfig, create_engine
from appliance.ai.course_writer import CourseBrief, draft_course
from appliance.ai.cpu_build import import_llama
from appliance.ai.local import LocalEngine
from appliance.ai.quality import Flag

PROMPT = "Phishing awareness for new employees"
STEP_MS, TOKEN_MS = 12.0, 17.0  # a quiet llama_decode over n tokens: about 12 + 17 n ms (docs/ai.md)
_modeled = [0.0]


def _count_decodes(build: str) -> None:
    """Price every llama_decode by its token count (modeled_seconds)."""
    L = import_llama("llama_cpp.llama_cpp", build)  # the engine's own binding, patched in this process only

    decode = L.llama_decode

    def priced(ctx: Any, batch: Any) -> Any:
        _modeled[0] += STEP_MS + TOKEN_MS * batch.n_tokens
        return decode(ctx, batch)

    L.llama_decode = priced


def one_course(engine: LocalEngine, screens: int, prompt: str = PROMPT) -> dict[str, Any]:
    before = dict(engine.totals)
    decoder = engine._decoder  # the batch's fill: steps by number of sequences decoded together
    widths_before = Counter(decoder.widths) if decoder is not None else Counter()
    begin = time.perf_counter()
    modeled_before = _modeled[0]
    marks: list[tuple[float, str]] = []

    def progress(fraction: float, message: str, data: dict[str, Any] | None) -> None:
        marks.append((time.perf_counter() - begin, message))

    draft = draft_course(engine, CourseBrief(prompt, audience="new hires", screen_count=screens), progress)
    total = time.perf_counter() - begin
    used = {k: engine.totals[k] - before[k] for k in before}
    return {
        "outline_seconds": round(next(t for t, m in marks if m == "outline"), 2),
        "plan_seconds": round(next((t for t, m in marks if m == "plan complete"), 0.0), 2),
        "first_screen_seconds": round(next(t for t, m in marks if m.startswith("screen")), 2),
        "course_seconds": round(total, 2),
        "screens": len(draft.content["screens"]),
        "types": [s["type"] for s in draft.content["screens"]],
        "generated_tokens": used["completion_tokens"],
        "forced_tokens": used["forced_tokens"],
        "prompt_tokens": used["prompt_tokens"],
        "cached_prompt_tokens": used["cached_tokens"],
        "aggregate_tok_s": round(used["completion_tokens"] / total, 2),
        "modeled_seconds": round((_modeled[0] - modeled_before) / 1000, 1),
        "screen_seconds": [round(t, 1) for t, m in marks if m.startswith("screen")],
        "steps_by_width": {k: n - widths_before[k] for k, n in sorted(decoder.widths.items())} if decoder else {},
        "regenerated": draft.regenerated,
        "flags": [_flag(f) for f in draft.flags],
        "title": draft.title,
    }


def _flag(f: Flag) -> dict[str, Any]:
    return {"rule": f.rule, "screen": f.screen, "detail": f.detail}


def together(engine: LocalEngine, n: int, screens: int) -> float:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            one_course(engine, screens)
        except BaseException as exc:  # reported below, the round fails loudly
            errors.append(exc)

    begin = time.perf_counter()
    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - begin


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct-q4_k_m")
    parser.add_argument("--screens", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cpu-build", default="auto", help="ai.cpu_build: auto, portable or avx512")
    parser.add_argument("--concurrency", type=int, default=4, help="0 skips the concurrency benchmark")
    parser.add_argument("--concurrent-screens", type=int, default=3)
    parser.add_argument("--concurrency-rounds", type=int, default=2)
    parser.add_argument("--company", default="", help="A,B: interleave P2 rounds over urgent_company values")
    parser.add_argument("--out", default="bench/results-course.json")
    args = parser.parse_args()
    load_before = os.getloadavg()
    _count_decodes(args.cpu_build)
    engine = create_engine(AIConfig(model=args.model, n_threads=args.threads, cpu_build=args.cpu_build))
    assert isinstance(engine, LocalEngine)
    started = time.perf_counter()
    engine.wait_ready()
    loaded = time.perf_counter() - started
    assert engine._decoder is not None
    companies = [int(v) for v in args.company.split(",")] if args.company else [engine._decoder.urgent_company]
    by_company: dict[int, list[dict[str, Any]]] = {c: [] for c in companies}
    for r in range(args.rounds):  # interleaved: A, B, B, A, ...
        for company in (companies if r % 2 == 0 else companies[::-1]):
            engine._decoder.urgent_company = company
            by_company[company].append({"urgent_company": company, **one_course(engine, args.screens)})
    engine._decoder.urgent_company = companies[0]
    keys = ("outline_seconds", "first_screen_seconds", "course_seconds", "generated_tokens", "aggregate_tok_s",
            "modeled_seconds")
    rounds = by_company[companies[0]]
    summary = {key: statistics.median(r[key] for r in rounds) for key in keys}
    result: dict[str, Any] = {
        "benchmark": "P2 course generation",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpu": cpu_model(),
        "nproc": os.cpu_count(),
        "model": args.model,
        "threads": args.threads,
        "cpu_build": engine.info()["cpu_build"],
        "parallel": engine.parallel,
        "prompt": PROMPT,
        "load_seconds": round(loaded, 2),
        "p2": {"screens": args.screens, "median": summary, "rounds": rounds},
    }
    if len(companies) > 1:
        result["p2_by_company"] = {
            str(c): {"median": {key: statistics.median(r[key] for r in rs) for key in keys}, "rounds": rs}
            for c, rs in by_company.items()}
    if args.concurrency:
        alone, crowd = [], []
        for r in range(args.concurrency_rounds):  # interleaved: alone, together, together, alone, ...
            for side in (("alone", "together") if r % 2 == 0 else ("together", "alone")):
                if side == "alone":
                    alone.append(together(engine, 1, args.concurrent_screens))
                else:
                    crowd.append(together(engine, args.concurrency, args.concurrent_screens))
        result["concurrency"] = {
            "courses": args.concurrency, "screens_each": args.concurrent_screens,
            "alone_seconds": [round(x, 2) for x in alone], "together_seconds": [round(x, 2) for x in crowd],
            "ratio_of_medians": round(statistics.median(crowd) / statistics.median(alone), 3),
        }
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result["loadavg_before"] = load_before
    result["loadavg_after"] = os.getloadavg()
    engine.close()
    Path(args.out).parent.mkdir(exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"p2": summary, "concurrency": result.get("concurrency")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
