"""Document ingestion benchmark (issues 6, 10): pages/s for a 100-page PDF through the appliance
(sandboxed extraction, chunking, encrypted original, FTS5 indexing) against pypdf alone on the same
file, and the time from upload to the first generated screen with the default model.
Results go to bench/results-documents.json (with date, CPU, nproc and load average); numbers are
quoted in docs/documents.md.

Like with like: the same file for every measure, interleaved rounds (pypdf, in-process, appliance,
pypdf, ...), a pause before each timed run so none starts while the previous one's spare reader is
still starting up, medians, and the ratio of pages/s (appliance / pypdf alone; 1.0 = as fast).

    .venv/bin/python bench/documents.py [--runs 9] [--model qwen2.5-coder-1.5b-instruct-q4_k_m] [--no-model]
        [--screens 5] [--whole]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance.documents import course, service
from appliance.documents.chunking import chunk_blocks
from appliance.documents.extract import Limits, extract
from appliance.runtime import initialise
from tests.documents.fixtures import long_pdf

PAGES = 100


def pypdf_alone(data: bytes) -> float:
    import pypdf

    started = time.perf_counter()
    reader = pypdf.PdfReader(io.BytesIO(data))
    text = [page.extract_text() for page in reader.pages]
    assert len(text) == PAGES
    return time.perf_counter() - started


def in_process(data: bytes) -> float:
    started = time.perf_counter()
    chunk_blocks(extract(data, "bench.pdf", Limits()).blocks)
    return time.perf_counter() - started


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpu": cpu, "nproc": os.cpu_count(),
            "platform": platform.platform(), "load_average": [round(x, 2) for x in os.getloadavg()]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--pause", type=float, default=0.5, help="seconds of rest before each timed run")
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct-q4_k_m")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--screens", type=int, default=5)
    parser.add_argument("--whole", action="store_true", help="also time the whole course (not only screen 1)")
    parser.add_argument("--no-model", action="store_true")
    parser.add_argument("--out", default="bench/results-documents.json")
    args = parser.parse_args()
    data = long_pdf(PAGES)
    results: dict[str, Any] = {"pages": PAGES, "pdf_bytes": len(data), "runs": args.runs, **machine()}
    pypdf_alone(data)  # warm imports
    in_process(data)
    timings: dict[str, list[float]] = {"pypdf": [], "in_process": [], "appliance": []}
    with tempfile.TemporaryDirectory() as tmp:
        runtime, _new = initialise(Path(tmp) / "data")
        try:
            workspace = runtime.create_workspace("bench")
            started = time.perf_counter()  # the first upload starts its reader cold (no spare yet)
            record = service.ingest(runtime, workspace, "test", "bench.pdf", data)
            results["appliance_cold_seconds"] = time.perf_counter() - started

            def appliance() -> float:
                began = time.perf_counter()
                service.ingest(runtime, workspace, "test", "bench.pdf", data)
                return time.perf_counter() - began

            for _ in range(args.runs):  # interleaved: load changes hit every measure alike
                for name, run in (("pypdf", lambda: pypdf_alone(data)), ("in_process", lambda: in_process(data)),
                                  ("appliance", appliance)):
                    time.sleep(args.pause)
                    timings[name].append(run())
            results["timings_ms"] = {k: [round(x * 1000, 1) for x in v] for k, v in timings.items()}
            results["pypdf_seconds"] = statistics.median(timings["pypdf"])
            results["extract_chunk_in_process_seconds"] = statistics.median(timings["in_process"])
            results["appliance_seconds"] = statistics.median(timings["appliance"])
            results["chunks"] = len(service.chunks(runtime.environment(workspace, "test").read(), record["id"]))
            results["load_average_after_ingest"] = [round(x, 2) for x in os.getloadavg()]
            if not args.no_model:
                results["model"] = first_screen(runtime, workspace, data, args)
                results["load_average_after_model"] = [round(x, 2) for x in os.getloadavg()]
        finally:
            runtime.close()
    results["pypdf_pages_per_second"] = PAGES / results["pypdf_seconds"]
    results["appliance_pages_per_second"] = PAGES / results["appliance_seconds"]
    results["in_process_pages_per_second"] = PAGES / results["extract_chunk_in_process_seconds"]
    # pages/s ratio: 1.0 means the appliance ingests as fast as pypdf alone extracts (target >= 0.8)
    results["ratio_appliance_to_pypdf"] = results["pypdf_seconds"] / results["appliance_seconds"]
    results["ratio_per_round"] = [round(p / a, 3) for p, a in zip(timings["pypdf"], timings["appliance"],
                                                                   strict=True)]
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


def first_screen(runtime: Any, workspace: int, data: bytes, args: argparse.Namespace) -> dict[str, Any]:
    """Upload to first screen: ingest, section digests, plan, first screen (then cancel, unless
    --whole). One run: a model run takes a minute; its load average is recorded next to it."""
    from appliance.ai.engine import CancelToken
    from appliance.ai.errors import Cancelled
    from appliance.ai.local import LocalEngine
    from appliance.ai.models import REPO_MODELS_DIR

    engine = LocalEngine(args.model, models_dir=REPO_MODELS_DIR, n_threads=args.threads, timeout=1800)
    try:
        load_started = time.perf_counter()
        status = engine.wait_ready(600)
        out: dict[str, Any] = {"name": args.model, "status": str(status.value),
                               "load_seconds": time.perf_counter() - load_started}
        if status.value != "ready":
            return out
        marks: list[tuple[float, str]] = []
        calls: list[dict[str, Any]] = []
        out["calls"] = calls
        cancel = CancelToken()
        complete = engine.complete

        def measured(*a: Any, **k: Any) -> Any:  # each model call's own statistics, to tell where time goes
            done = complete(*a, **k)
            s = done.stats
            calls.append({"end": round(time.perf_counter() - started, 2), "prompt_tokens": s.prompt_tokens,
                          "cached_tokens": getattr(s, "cached_tokens", 0),
                          "completion_tokens": s.completion_tokens, "queue_seconds": round(s.queue_seconds, 2),
                          "prompt_seconds": round(s.prompt_seconds, 2), "gen_seconds": round(s.gen_seconds, 2)})
            return done

        engine.complete = measured  # type: ignore[method-assign]
        started = time.perf_counter()
        record = service.ingest(runtime, workspace, "test", "bench.pdf", data)
        out["ingest_seconds"] = time.perf_counter() - started
        db = runtime.environment(workspace, "test")
        document = service.get_row(db.read(), record["id"])

        def progress(fraction: float, message: str, info: dict[str, Any] | None) -> None:
            marks.append((time.perf_counter() - started, message))
            if info and ("objectives" in info or ("screen" in info and "first_screen" not in out)):
                out["outline" if "objectives" in info else "first_screen"] = info  # to read the quality
            if info and "screen" in info and not args.whole:
                cancel.cancel()

        try:
            course.document_course(engine, db, document, course.Request(record["id"], screen_count=args.screens),
                                   runtime.settings.documents, progress, cancel)
        except Cancelled:
            pass
        out["n_ctx"] = engine.n_ctx
        out["marks"] = [[round(t, 2), m] for t, m in marks]
        out["sections"] = sum(1 for _t, m in marks if m.startswith("summarised"))
        out["upload_to_outline_seconds"] = next((t for t, m in marks if m == "outline"), None)
        out["upload_to_first_screen_seconds"] = next((t for t, m in marks if m.startswith("screen ")), None)
        if args.whole:
            out["upload_to_whole_course_seconds"] = max((t for t, m in marks if m.startswith("screen ")),
                                                        default=None)
        return out
    finally:
        engine.close()


if __name__ == "__main__":
    raise SystemExit(main())
