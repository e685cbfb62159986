"""Course generation with the default model: time to the first generated screen, to a complete
10-screen course, and peak RSS. Results go to bench/results-course.json.

    .venv/bin/python bench/course.py [--model qwen2.5-coder-1.5b-instruct-q4_k_m] [--screens 10]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path
from typing import Any

from appliance.ai.config import AIConfig, create_engine
from appliance.ai.generation import CourseBrief, generate_course
from appliance.ai.local import LocalEngine


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct-q4_k_m")
    parser.add_argument("--screens", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="bench/results-course.json")
    args = parser.parse_args()
    engine = create_engine(AIConfig(model=args.model, n_threads=args.threads))
    assert isinstance(engine, LocalEngine)
    started = time.perf_counter()
    engine.wait_ready()
    loaded = time.perf_counter() - started
    marks: list[tuple[float, str]] = []
    begin = time.perf_counter()

    def progress(fraction: float, message: str, data: dict[str, Any] | None) -> None:
        marks.append((time.perf_counter() - begin, message))

    title, _description, content = generate_course(
        engine, CourseBrief("Phishing awareness for new employees", audience="new hires", screen_count=args.screens),
        progress,
    )
    total = time.perf_counter() - begin
    first_screen = next(t for t, m in marks if m.startswith("screen"))
    result = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": args.model,
        "threads": args.threads,
        "load_seconds": round(loaded, 2),
        "outline_seconds": round(marks[0][0], 2),
        "first_screen_seconds": round(first_screen, 2),
        "course_seconds": round(total, 2),
        "screens": len(content["screens"]),
        "title": title,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "loadavg": list(__import__("os").getloadavg()),
    }
    engine.close()
    Path(args.out).parent.mkdir(exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
