"""The console's other pages over real HTTP: entitlements, webhooks ("send test" reaches a real
receiver), models, the audit log (filters, export, verify chain), overview and usage."""

from __future__ import annotations

import csv
import io
import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from appliance.ai.models import REPO_MODELS_DIR
from tests.admin.console import Visitor, audit_entries, setup_link
from tests.helpers import Install, Server, free_port, init_data_dir, start_server


class Receiver(BaseHTTPRequestHandler):
    bodies: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # http.server calls it by this name
        length = int(self.headers.get("content-length", "0"))
        Receiver.bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def receiver() -> Iterator[int]:
    port = free_port()
    httpd = HTTPServer(("127.0.0.1", port), Receiver)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield port
    httpd.shutdown()


@pytest.fixture(scope="module")
def pages_install(tmp_path_factory: pytest.TempPathFactory) -> Install:
    return init_data_dir(tmp_path_factory.mktemp("console-pages") / "data")


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's manifest and test model, linked: a model added in a test lands here."""
    d = tmp_path_factory.mktemp("console-models")
    for name in ("manifest.json", "smollm2-135m-instruct-q4_1.gguf", "smollm2-135m-instruct-q4_1.gguf.sha256"):
        (d / name).symlink_to(REPO_MODELS_DIR / name)
    return d


@pytest.fixture(scope="module")
def pages_server(pages_install: Install, models_dir: Path) -> Iterator[Server]:
    env = {"APPLIANCE_WEBHOOKS_ALLOW_HOSTS": "127.0.0.1", "APPLIANCE_WEBHOOKS_ALLOW_HTTP": "true",
           "APPLIANCE_MODELS_DIR": str(models_dir)}
    srv = start_server(pages_install.data_dir, env=env)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def admin(pages_server: Server) -> Iterator[Visitor]:
    visitor = Visitor(pages_server)
    assert visitor.set_up(setup_link(pages_server)).status_code == 303
    yield visitor
    visitor.close()


def test_switching_an_entitlement_off_stops_the_partner_api(admin: Visitor, pages_server: Server, pages_install: Install) -> None:
    api = pages_server.client(pages_install.test_key)
    assert api.get("/v1/headless/courses").status_code == 200
    fields = {"workspace": str(pages_install.workspace_id), "name": "api", "state": "off"}
    assert admin.form("/admin/workspaces", "/admin/workspaces/entitlement", fields).status_code == 303
    assert api.get("/v1/headless/courses").status_code == 403
    assert "api: off" in admin.get("/admin/workspaces").text
    assert admin.form("/admin/workspaces", "/admin/workspaces/entitlement", {**fields, "state": "on"}).status_code == 303
    assert api.get("/v1/headless/courses").status_code == 200
    refused = admin.form("/admin/workspaces", "/admin/workspaces/entitlement", {**fields, "name": "no-such"})
    assert refused.status_code == 422 and "unknown entitlement" in refused.text


def test_send_test_reaches_the_receiver_and_shows_in_the_delivery_log(admin: Visitor, pages_server: Server, pages_install: Install, receiver: int) -> None:
    api = pages_server.client(pages_install.test_key)
    created = api.post("/v1/headless/webhooks", json={"url": f"http://127.0.0.1:{receiver}/hook", "events": ["course.completed"]})
    assert created.status_code == 200, created.text
    endpoint_id = created.json()["id"]
    page = admin.get("/admin/webhooks")
    assert f"http://127.0.0.1:{receiver}/hook" in page.text and "Send test" in page.text
    sent = admin.form("/admin/webhooks", "/admin/webhooks/test", {"workspace": str(pages_install.workspace_id), "env": "test", "id": str(endpoint_id)})
    assert sent.status_code == 303
    deadline = time.monotonic() + 30
    while not Receiver.bodies and time.monotonic() < deadline:
        time.sleep(0.2)
    assert Receiver.bodies and Receiver.bodies[0]["test"] is True and Receiver.bodies[0]["type"] == "course.completed"
    deadline = time.monotonic() + 10
    while "delivered" not in (log := admin.get("/admin/webhooks").text) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert re.search(r"course\.completed \(test\)</td><td>delivered", log)


def test_the_models_page_lists_and_verifies_the_installed_model(admin: Visitor) -> None:
    page = admin.get("/admin/ai")
    assert page.status_code == 200 and "smollm2-135m-instruct (default)" in page.text and "<h2>AI queue</h2>" in page.text
    verified = admin.get("/admin/ai", params={"verify": "smollm2-135m-instruct"})
    assert re.search(r'verify: <strong class="ok">ok</strong>', verified.text)


def test_a_model_is_added_from_a_file_on_the_server(admin: Visitor, models_dir: Path, tmp_path: Path,
                                                     pages_install: Install) -> None:
    model = tmp_path / "tiny-test.gguf"
    model.write_bytes(b"GGUF" + bytes(range(256)) * 4)
    added = admin.form("/admin/ai", "/admin/ai/add", {"file": str(model), "name": "tiny-test", "license": "MIT"})
    assert added.status_code == 303 and added.headers["location"] == "/admin/ai?done=model-added"
    assert (models_dir / "tiny-test.gguf").read_bytes() == model.read_bytes()
    listed = admin.get("/admin/ai").text
    assert "tiny-test" in listed and "MIT" in listed
    assert any(e["target"] == "model:tiny-test" and e["actor"] == "admin:ops" for e in audit_entries(pages_install.data_dir))
    text = tmp_path / "notes.txt"
    text.write_text("not a model")
    refused = admin.form("/admin/ai", "/admin/ai/add", {"file": str(text)})
    assert refused.status_code == 422 and "not a GGUF file" in refused.text
    assert not (models_dir / "notes.txt").exists()
    assert admin.form("/admin/ai", "/admin/ai/add", {"file": "relative.gguf"}).status_code == 422
    assert admin.form("/admin/ai", "/admin/ai/add", {"file": str(tmp_path / "none.gguf")}).status_code == 404
    no_csrf = admin.http.post("/admin/ai/add", data={"file": str(model)})
    assert no_csrf.status_code == 403


def test_the_audit_log_filters_exports_and_verifies(admin: Visitor, pages_server: Server) -> None:
    filtered = admin.get("/admin/audit", params={"actor": "admin:ops", "route": "/admin/workspaces"})
    rows = re.findall(r"<tr><td>(\d+)</td><td>[^<]+</td><td>([^<]+)</td>", filtered.text)
    assert rows and {actor for _, actor in rows} == {"admin:ops"}
    exported = admin.get("/admin/audit/export", params={"format": "csv", "actor": "admin:ops"})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(exported.text)))
    assert table and {r["actor"] for r in table} == {"admin:ops"} and "hash" in table[0]
    lines = admin.get("/admin/audit/export", params={"format": "json", "status": "303"}).text.splitlines()
    assert lines and all(json.loads(line)["status"] == 303 for line in lines)
    verified = admin.form("/admin/audit", "/admin/audit/verify", {})
    assert verified.status_code == 200 and "Chain intact" in verified.text


def test_overview_and_usage(admin: Visitor, pages_install: Install) -> None:
    overview = admin.get("/admin/").text
    assert re.search(r"<dt>Workspaces</dt><dd>1</dd>", overview) and re.search(r"<dt>Administrators</dt><dd>1</dd>", overview)
    assert "control database</dt><dd><span class=\"ok\">ok" in overview
    usage = admin.get("/admin/usage").text
    assert "Usage per workspace and key" in usage and "apikey:key_" in usage


def test_a_queued_ai_job_is_listed_and_cancelled_from_the_console(admin: Visitor, pages_server: Server, pages_install: Install) -> None:
    api = pages_server.client(pages_install.test_key)
    api.headers["Prefer"] = "respond-async"
    course_id = api.get("/v1/headless/courses").json()[0]["id"]
    ids = []
    for n in range(3):  # two workers: the third waits in the queue, so it cannot finish before the cancel
        started = api.post(f"/v1/headless/generate/course/{course_id}/screen", json={"type": "text", "prompt": f"Fire exits {n}"})
        assert started.status_code == 202, started.text
        ids.append(started.json()["id"])
    try:
        page = admin.get("/admin/ai").text
        assert f"Cancel job {ids[-1]}" in page
        cancelled = admin.form("/admin/ai", "/admin/ai/cancel", {"workspace": str(pages_install.workspace_id), "env": "test", "id": str(ids[-1])})
        assert cancelled.status_code == 303 and cancelled.headers["location"] == "/admin/ai?done=cancelled"
        for job_id in ids[:-1]:  # a cancelled queued job settles when a worker takes it: free the workers
            api.post(f"/v1/headless/jobs/{job_id}/cancel")
        deadline = time.monotonic() + 120  # a worker takes it once one of the screens is written
        while (state := api.get(f"/v1/headless/jobs/{ids[-1]}").json()["status"]) not in ("cancelled", "succeeded", "failed") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert state == "cancelled"
        assert any(e["route"] == "/admin/ai/cancel" and e["actor"] == "admin:ops" and e["target"] == f"job:1:test:{ids[-1]}"
                   for e in audit_entries(pages_server.data_dir))
    finally:
        for job_id in ids:  # the machine's cores back for the other tests, whatever failed above
            api.post(f"/v1/headless/jobs/{job_id}/cancel")
