"""Quality benchmark (issue 10): five fixed workplace prompts, a course each, generated with the
default model and checked by the quality gate (appliance.ai.quality). Reports per course the time,
the mix of screen types, whether there is a quiz, the meta-talk, leaked-markup and repeated-sentence
hits, and every flag. Target: every course passes the gate with no flags.
Results go to bench/results-quality.json (with date, CPU model, nproc and load average).

    .venv/bin/python bench/quality.py [--model qwen2.5-coder-1.5b-instruct-q4_k_m] [--screens 10]
        [--threads 2] [--prompts 5] [--out bench/results-quality.json] [--content]

A full run with the default model takes several minutes per course on a loaded 2-core machine; a
smoke run: --model smollm2-135m-instruct --screens 4 --prompts 1.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

from appliance.ai.bench import cpu_model
from appliance.ai.config import AIConfig, create_engine
from appliance.ai.course_writer import CourseBrief, generate_course
from appliance.ai.quality import course_flags

# Fixed prompts: varied workplace topics and audiences, the first one is issue 10's failing course.
PROMPTS = (
    "Safe handling of customer personal data for call-centre staff",
    "Recognising and reporting phishing emails for office employees",
    "Manual handling: lifting and carrying loads safely in a warehouse",
    "Rolling out the new expense-claims app to sales staff: what changes and how to submit a claim",
    "Giving constructive feedback to your team, for first-time managers",
)



def run_course(engine: Any, prompt: str, screens: int, keep_content: bool) -> dict[str, Any]:
    marks: list[tuple[float, str]] = []
    begin = time.perf_counter()

    def progress(fraction: float, message: str, data: dict[str, Any] | None) -> None:
        marks.append((time.perf_counter() - begin, message))

    try:
        title, description, content = generate_course(engine, CourseBrief(prompt, screen_count=screens), progress)
    except Exception as exc:  # one failed course must not lose the others' results
        return {"prompt": prompt, "error": f"{type(exc).__name__}: {exc}",
                "seconds": round(time.perf_counter() - begin, 2)}
    seconds = time.perf_counter() - begin
    flags = course_flags(content)
    by_rule = collections.Counter(f.rule for f in flags)
    kinds = collections.Counter(str(s.get("type")) for s in content["screens"])
    first_screen = next((t for t, m in marks if m.startswith("screen")), None)
    result: dict[str, Any] = {
        "prompt": prompt,
        "title": title,
        "description": description,
        "seconds": round(seconds, 2),
        "first_screen_seconds": round(first_screen, 2) if first_screen is not None else None,
        "screens": len(content["screens"]),
        "type_mix": dict(sorted(kinds.items())),
        "quiz_present": "quiz" in kinds,
        "meta_talk_hits": by_rule["meta_talk"],
        "leaked_markup_hits": by_rule["leaked_markup"],
        "repeated_sentences": by_rule["repeated_sentence"],
        "flags_by_rule": dict(sorted(by_rule.items())),
        "passes": not flags,
        "flags": [dataclasses.asdict(f) for f in flags],
        "outline": [{"type": s.get("type"), "title": s.get("title")} for s in content["screens"]],
    }
    if keep_content:
        result["content"] = content
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct-q4_k_m")
    parser.add_argument("--screens", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--prompts", type=int, default=len(PROMPTS), help="run only the first N prompts")
    parser.add_argument("--out", default="bench/results-quality.json")
    parser.add_argument("--content", action="store_true", help="also write each generated course")
    args = parser.parse_args()

    load_before = os.getloadavg()
    engine = create_engine(AIConfig(model=args.model, n_threads=args.threads))
    started = time.perf_counter()
    wait_ready = getattr(engine, "wait_ready", None)
    if callable(wait_ready):
        wait_ready()
    loaded = time.perf_counter() - started
    courses = []
    try:
        for prompt in PROMPTS[: max(1, args.prompts)]:
            course = run_course(engine, prompt, args.screens, args.content)
            courses.append(course)
            flags = course.get("flags_by_rule", course.get("error"))
            print(f"{course['seconds']:7.1f} s  {prompt[:60]:60}  {flags}", flush=True)
        cpu_build = engine.info().get("cpu_build")
    finally:
        engine.close()
    done = [c for c in courses if "error" not in c]
    result = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpu": cpu_model(),
        "nproc": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "model": args.model,
        "threads": args.threads,
        "cpu_build": cpu_build,
        "screens_per_course": args.screens,
        "load_seconds": round(loaded, 2),
        "summary": {
            "courses": len(courses),
            "errors": len(courses) - len(done),
            "passing": sum(1 for c in done if c["passes"]),
            "with_quiz": sum(1 for c in done if c["quiz_present"]),
            "meta_talk_hits": sum(c["meta_talk_hits"] for c in done),
            "leaked_markup_hits": sum(c["leaked_markup_hits"] for c in done),
            "repeated_sentences": sum(c["repeated_sentences"] for c in done),
            "flags": sum(len(c["flags"]) for c in done),
            "seconds": round(sum(c["seconds"] for c in courses), 1),
        },
        "courses": courses,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result["summary"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
