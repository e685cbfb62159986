"""The SCORM tests' real processes: the appliance on 127.0.0.1:P and an "LMS" on localhost:Q (another
origin) whose page creates the SCORM API from scorm-again (tests/scorm/vendor) and frames an
unzipped package, driven in Debian's Chromium through Playwright."""

from __future__ import annotations

import io
import json
import math
import struct
import threading
import wave
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import Install, Server, create_key, free_port, init_data_dir, start_server

VENDOR = Path(__file__).resolve().parent / "vendor"
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
PIXEL = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)

LMS_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Test LMS</title>
<script src="/scorm-again.min.js"></script>
<style>body{margin:0;font:14px system-ui} header{padding:4px 8px;background:#eee} iframe{width:100%;height:820px;border:0}</style>
</head><body>
<header>Test LMS (scorm-again) — <span id="version"></span></header>
<script>
  const params = new URLSearchParams(location.search);
  const version = params.get("version");
  document.getElementById("version").textContent = "SCORM " + version;
  window.__calls = [];
  const settings = { autocommit: false, logLevel: 5 };
  const api = version === "1.2" ? new Scorm12API(settings) : new Scorm2004API(settings);
  const learner = params.get("learner") || "learner-1";
  const seed = params.get("seed");
  if (version === "1.2") {
    api.loadFromJSON({ core: { student_id: learner, student_name: "Doe, Jo" } }, "");
    window.API = api;
  } else {
    api.loadFromJSON({ learner_id: learner, learner_name: "Jo Doe" }, "");
    window.API_1484_11 = api;
  }
  if (seed) api.loadFromJSON(JSON.parse(seed), "");
  for (const name of ["LMSInitialize", "LMSCommit", "LMSFinish", "Initialize", "Commit", "Terminate"]) {
    api.on(name, () => window.__calls.push(name));
  }
  window.__sets = [];
  api.on(version === "1.2" ? "LMSSetValue.cmi.*" : "SetValue.cmi.*", (element, value) => window.__sets.push([element, String(value)]));
  const frame = document.createElement("iframe");
  frame.id = "sco";
  frame.src = "/pkg/" + params.get("pkg") + "/index.html";
  document.body.appendChild(frame);
</script>
</body></html>
"""

SEED_COURSE = {
    "start": {"button_label": "Start"},
    "finish": {"title": "Well done!", "description": "Done."},
    "screens": [
        {
            "id": 1,
            "type": "media",
            "title": "A picture",
            "content": {"url": PIXEL, "alt": "One pixel"},
        },
        {
            "id": 2,
            "type": "quiz",
            "title": "Check",
            "scored": True,
            "passing_grade": 100,
            "content": {
                "questions": [
                    {
                        "id": 1,
                        "question": "Pick A",
                        "answers": [{"id": 1, "text": "A", "correct": True}, {"id": 2, "text": "B", "correct": False}],
                        "feedback": {"correct": "Yes", "incorrect": "No"},
                    }
                ]
            },
        },
    ],
}


@dataclass
class Appliance:
    install: Install
    server: Server
    production_key: str
    ids: dict[str, int] = field(default_factory=dict)
    expired_token: str = ""

    @property
    def url(self) -> str:
        return self.server.url

    def api(self, key: str | None = None) -> httpx.Client:
        return self.server.client(key or self.install.test_key, timeout=60)

    def log(self) -> str:
        return self.server.log()


def tone_wav(seconds: float = 0.6, rate: int = 16000) -> bytes:
    """A small real WAV (a 440 Hz tone, 16-bit mono), as the narration worker writes them."""
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate))) for i in range(int(seconds * rate))
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return out.getvalue()


NARRATED_COURSE = {
    "screens": [
        {"id": 1, "type": "text", "title": "Listen", "content": {"html": "<p>Hello there.</p>"}},
        {"id": 2, "type": "text", "title": "Read", "content": {"html": "<p>No clip here.</p>"}},
    ]
}


def _seed(install: Install) -> tuple[dict[str, int], str]:
    from appliance import config
    from appliance.ai import narration
    from appliance.courses import service as courses
    from appliance.courses.validate import validate_content
    from appliance.embeds.sessions import signer_of
    from appliance.embeds.tokens import SCORM_TYP
    from appliance.runtime import open_runtime
    from appliance.scorm.package import package_token
    from appliance.storage.objects import ObjectStore

    runtime = open_runtime(config.load(install.data_dir))
    try:
        ids: dict[str, int] = {}

        def test_env(w: Any) -> None:
            ids["media"] = courses.create(w, title="Pixel & quiz", content=SEED_COURSE, identifier="ann", client_identifier="acme")
            courses.publish(w, ids["media"])
            ids["draft"] = courses.create(w, title="Never published", content=SEED_COURSE)
            ids["deleted"] = courses.create(w, title="Gone", content=SEED_COURSE)
            courses.publish(w, ids["deleted"])
            courses.soft_delete(w, ids["deleted"])
            # screen 1 narrated the way the narration job stores clips: encrypted under the course's key
            ids["narrated"] = courses.create(w, title="Narrated", content=NARRATED_COURSE)
            row = courses.get_row(w, ids["narrated"])
            wav = tone_wav()
            object_id = ObjectStore(runtime).put(install.workspace_id, "test", *narration._subject(row), wav)
            content = json.loads(row["draft"])
            content["screens"][0]["narration"] = {
                "id": object_id, "duration": round(narration.wav_duration(wav), 2), "voice": "test-tone", "hash": "",
                "chars": 12,
            }
            courses.save_draft(w, ids["narrated"], validate_content(content))
            courses.publish(w, ids["narrated"])

        def production(w: Any) -> None:
            ids["production"] = courses.create(w, title="Production course", content=SEED_COURSE)
            courses.publish(w, ids["production"])

        runtime.environment(install.workspace_id, "test").write(test_env)
        runtime.environment(install.workspace_id, "production").write(production)
        # a dynamic package token for the demo course that expired a minute ago
        token, _ = package_token(signer_of(runtime), install.workspace_id, "test", 1, "1.2")
        claims = signer_of(runtime).verify(token, SCORM_TYP)
        expired, _ = signer_of(runtime).sign(
            SCORM_TYP, {k: claims[k] for k in ("workspace", "environment", "kind", "action", "course", "scorm")}, -60
        )
        return ids, expired
    finally:
        runtime.close()


@pytest.fixture(scope="session")
def appliance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Appliance]:
    install = init_data_dir(tmp_path_factory.mktemp("scorm") / "data")
    ids, expired = _seed(install)
    production_key = create_key(install.data_dir, install.workspace_id, "production")
    port = free_port()
    server = start_server(install.data_dir, port=port, env={"APPLIANCE_SERVER_PUBLIC_URL": f"http://127.0.0.1:{port}"})
    yield Appliance(install, server, production_key, ids, expired)
    server.stop()


def unzip(body: bytes, target: Path) -> None:
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        for name in archive.namelist():
            assert not name.startswith("/") and ".." not in name.split("/"), name
        archive.extractall(target)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Lms:
    root: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    def install(self, name: str, body: bytes) -> Path:
        target = self.root / "pkg" / name
        unzip(body, target)
        return target


@pytest.fixture(scope="session")
def lms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lms]:
    root = tmp_path_factory.mktemp("lms")
    (root / "index.html").write_text(LMS_PAGE)
    (root / "scorm-again.min.js").write_bytes((VENDOR / "scorm-again.min.js").read_bytes())
    (root / "pkg").mkdir()
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Lms(root, port)
    server.shutdown()
    server.server_close()


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
