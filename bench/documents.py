"""Document ingestion benchmark (issue 6): pages/s for a 100-page PDF through the appliance
(sandboxed extraction, chunking, encrypted original, FTS5 indexing) against pypdf alone on the same
file, and the time from upload to the first generated screen with the default model.
Results go to bench/results-documents.json; numbers are quoted in docs/documents.md.

    .venv/bin/python bench/documents.py [--runs 5] [--model qwen2.5-coder-1.5b-instruct-q4_k_m] [--no-model]
"""

from __future__ import annotations

import argparse
import io
import json
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct-q4_k_m")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--screens", type=int, default=5)
    parser.add_argument("--no-model", action="store_true")
    parser.add_argument("--out", default="bench/results-documents.json")
    args = parser.parse_args()
    data = long_pdf(PAGES)
    results: dict[str, Any] = {"pages": PAGES, "pdf_bytes": len(data), "runs": args.runs,
                               "platform": platform.platform(), "time": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                       time.gmtime())}
    pypdf_alone(data)  # warm imports
    results["pypdf_seconds"] = statistics.median(pypdf_alone(data) for _ in range(args.runs))
    results["extract_chunk_in_process_seconds"] = statistics.median(in_process(data) for _ in range(args.runs))
    with tempfile.TemporaryDirectory() as tmp:
        runtime, _new = initialise(Path(tmp) / "data")
        try:
            workspace = runtime.create_workspace("bench")
            times = []
            record: dict[str, Any] = {}
            for _ in range(args.runs + 1):  # the first run also starts the reader's forkserver
                started = time.perf_counter()
                record = service.ingest(runtime, workspace, "test", "bench.pdf", data)
                times.append(time.perf_counter() - started)
            results["appliance_first_seconds"] = times[0]
            results["appliance_seconds"] = statistics.median(times[1:])
            results["chunks"] = len(service.chunks(runtime.environment(workspace, "test").read(), record["id"]))
            if not args.no_model:
                results["model"] = first_screen(runtime, workspace, data, args)
        finally:
            runtime.close()
    results["pypdf_pages_per_second"] = PAGES / results["pypdf_seconds"]
    results["appliance_pages_per_second"] = PAGES / results["appliance_seconds"]
    results["in_process_pages_per_second"] = PAGES / results["extract_chunk_in_process_seconds"]
    results["ratio_appliance_to_pypdf"] = results["appliance_seconds"] / results["pypdf_seconds"]
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


def first_screen(runtime: Any, workspace: int, data: bytes, args: argparse.Namespace) -> dict[str, Any]:
    """Upload to first screen: ingest, section summaries, plan, first screen (then cancel)."""
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
        cancel = CancelToken()
        started = time.perf_counter()
        record = service.ingest(runtime, workspace, "test", "bench.pdf", data)
        out["ingest_seconds"] = time.perf_counter() - started
        db = runtime.environment(workspace, "test")
        document = service.get_row(db.read(), record["id"])

        def progress(fraction: float, message: str, info: dict[str, Any] | None) -> None:
            marks.append((time.perf_counter() - started, message))
            if info and "screen" in info:
                cancel.cancel()

        try:
            course.document_course(engine, db, document, course.Request(record["id"], screen_count=args.screens),
                                   runtime.settings.documents, progress, cancel)
        except Cancelled:
            pass
        out["n_ctx"] = engine.n_ctx
        out["marks"] = [[round(t, 2), m] for t, m in marks]
        out["sections"] = sum(1 for _t, m in marks if m.startswith("summarised"))
        out["upload_to_first_screen_seconds"] = next((t for t, m in marks if m.startswith("screen 1")), None)
        return out
    finally:
        engine.close()


if __name__ == "__main__":
    raise SystemExit(main())
