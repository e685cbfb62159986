"""Console page load: time to first byte and to DOMContentLoaded of the console's pages in Debian's
Chromium against the real server, with 10,000 audit entries and 1,000 API keys (lists are paged on
the server, so a page costs the same with 10 or 10 million rows; this checks it). Results go to
bench/results-console-<date>.json (date, CPU, nproc, load average); quoted in docs/operations.md.

    .venv/bin/python bench/console.py [--entries 10000] [--keys 1000] [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from concurrent.futures import wait
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance import config
from appliance.runtime import open_runtime
from appliance.security.audit import AuditEvent
from appliance.workspaces import service
from tests.admin.console import PASSPHRASE, setup_link
from tests.helpers import CHROMIUM, CHROMIUM_ARGS, init_data_dir, start_server

PAGES = ["/admin/", "/admin/keys", "/admin/keys?page=20", "/admin/audit", "/admin/audit?page=150",
         "/admin/audit?actor=admin:ops", "/admin/usage", "/admin/backups", "/admin/origins"]


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "")
    return {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpu": cpu, "nproc": os.cpu_count(),
            "platform": platform.platform(), "load_average": [round(x, 2) for x in os.getloadavg()]}


def populate(data_dir: Path, workspace_id: int, entries: int, keys: int) -> None:
    """Keys through the workspace service; audit entries through the audit log's own writer (group
    commits), as API calls of those keys spread over the last eight days."""
    runtime = open_runtime(config.load(data_dir))
    try:
        ids = [service.create_api_key(runtime.control, runtime.pepper, workspace_id, "test")[0] for _ in range(keys)]
        now = time.time()
        futures = []
        for n in range(entries):
            moment = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(now - (entries - n) * 8 * 86400 / entries))
            event = AuditEvent(actor=f"apikey:{ids[n % 50]}", method="GET", route="/v1/headless/courses", status=200,
                               request_id=f"{n:016x}", workspace_id=workspace_id, environment="test", time=moment)
            futures.append(runtime.audit.database.submit(runtime.audit._job_for(event)))
        wait(futures)
        for future in futures:
            future.result()
    finally:
        runtime.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--out", default=f"bench/results-console-{time.strftime('%Y-%m-%d', time.gmtime())}.json")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    result: dict[str, Any] = {"machine_before": machine(), "entries": args.entries, "keys": args.keys, "runs": args.runs}
    with tempfile.TemporaryDirectory() as tmp:
        install = init_data_dir(Path(tmp) / "data")
        started = time.perf_counter()
        populate(install.data_dir, install.workspace_id, args.entries, args.keys)
        result["populate_seconds"] = round(time.perf_counter() - started, 1)
        server = start_server(install.data_dir)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
                page.goto(setup_link(server))
                page.get_by_label("Administrator name").fill("ops")
                page.get_by_label("Passphrase", exact=True).fill(PASSPHRASE)
                page.get_by_label("Passphrase again").fill(PASSPHRASE)
                page.get_by_role("button", name="Create administrator").click()
                page.wait_for_url(re.compile(r"/admin/\?done=setup$"))
                pages: dict[str, Any] = {}
                for path in PAGES:
                    ttfb, dcl = [], []
                    for _ in range(args.runs):
                        response = page.goto(server.url + path)
                        assert response is not None and response.status == 200, path
                        timing = page.evaluate(
                            "(() => { const n = performance.getEntriesByType('navigation')[0];"
                            " return [n.responseStart - n.requestStart, n.domContentLoadedEventEnd - n.startTime]; })()"
                        )
                        ttfb.append(timing[0])
                        dcl.append(timing[1])
                    pages[path] = {"ttfb_ms_median": round(statistics.median(ttfb), 1), "ttfb_ms_max": round(max(ttfb), 1),
                                   "dcl_ms_median": round(statistics.median(dcl), 1), "dcl_ms_max": round(max(dcl), 1),
                                   "bytes": len(page.content())}
                    print(f"{path:32} first byte {pages[path]['ttfb_ms_median']:7.1f} ms   DOMContentLoaded {pages[path]['dcl_ms_median']:7.1f} ms")
                browser.close()
            result["pages"] = pages
        finally:
            server.stop()
    result["machine_after"] = machine()
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
