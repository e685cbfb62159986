"""The air-gap proof's driver (tests/test_airgap.py runs it inside `unshare -n` under strace).

In a network namespace that has only loopback it brings `lo` up, serves a webhook receiver on
127.0.0.1, starts the appliance from source with the small test model, and uses every feature
that could be tempted to reach out: a generated course, a document upload, a webhook delivery to an
allowed host, `backup now` and `backup verify`. It writes what each step returned to a JSON file;
the test decides whether that is right.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.helpers import cli, init_data_dir, start_server


class Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        Hook.received.append({"path": self.path, "event": self.headers.get("x-coassemble-event"), "bytes": len(body)})
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def main(work: Path) -> dict[str, Any]:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    results: dict[str, Any] = {}
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    install = init_data_dir(work / "data")
    env = {"APPLIANCE_WEBHOOKS_ALLOW_HOSTS": "127.0.0.1", "APPLIANCE_WEBHOOKS_ALLOW_HTTP": "true",
           "APPLIANCE_AI_N_THREADS": "1"}
    started = time.monotonic()
    server = start_server(install.data_dir, env=env)
    results["serve_seconds"] = round(time.monotonic() - started, 1)
    try:
        c = server.client(install.test_key, timeout=120)
        hook = c.post("/v1/headless/webhooks", json={
            "url": f"http://127.0.0.1:{receiver.server_port}/hook", "events": ["course.created", "course.completed"]})
        results["webhook_register"] = hook.status_code
        course = c.post("/v1/headless/generate/course",
                        json={"prompt": "Ladder safety", "screenCount": 1, "identifier": "author-1"})
        results["course"] = {"status": course.status_code,
                             "screens": len(course.json().get("screens", [])) if course.status_code == 200 else 0}
        doc = c.post("/v1/headless/documents", files={"file": ("notes.txt", b"Ladders.\n\nThree points of contact.")})
        results["document"] = {"status": doc.status_code, "type": doc.json().get("type")}
        if hook.status_code == 200:
            test = c.post(f"/v1/headless/webhooks/{hook.json()['id']}/test")
            results["webhook_test"] = test.status_code
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not any(r["path"] == "/hook" for r in Hook.received):
                time.sleep(0.1)
            time.sleep(1)  # the course.created delivery too
            log = c.get(f"/v1/headless/webhooks/{hook.json()['id']}/deliveries").json()
            results["webhook_deliveries"] = sorted(d["status"] for d in log)
        results["webhook_received"] = sorted(str(r["event"]) for r in Hook.received)
        backup = cli("backup", "now", data_dir=install.data_dir, check=False)
        results["backup_now"] = backup.returncode
        results["backup_verify"] = cli("backup", "verify", data_dir=install.data_dir, check=False).returncode
        results["health"] = c.get("/health").status_code
    finally:
        server.stop()
        receiver.shutdown()
    results["seconds"] = round(time.monotonic() - started, 1)
    return results


if __name__ == "__main__":
    work = Path(sys.argv[1])
    Path(sys.argv[2]).write_text(json.dumps(main(work)))
