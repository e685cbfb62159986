"""cmi5 packages from the real export route: `cmi5.xml` valid against the cmi5 schema, and the AU
launched in Chromium by a small cmi5 LMS on loopback (fetch URL, LaunchData, an LRS)."""

from __future__ import annotations

import base64
import io
import json
import threading
import uuid
import zipfile
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import xmlschema

from appliance.scorm.package import WEB_DIR
from tests.helpers import free_port
from tests.scorm.conftest import Appliance, unzip
from tests.scorm.test_runtime import DEMO, _complete_demo
from tests.xapi.lrs import validate

XSD = Path(__file__).resolve().parent / "vendor" / "cmi5" / "CourseStructure.xsd"
NS = "{https://w3id.org/xapi/profiles/cmi5/v1/CourseStructure.xsd}"
TOKEN = base64.b64encode(b"au-session:0c7a").decode()
SESSION = "https://w3id.org/xapi/cmi5/context/extensions/sessionid"
OUTCOME_STATE = "https://coassemble-appliance/cmi5/outcome"  # the AU's own state document (cmi5-transport.js)


def _export(appliance: Appliance, course: int = DEMO, prefix: str = "/v1/headless") -> Any:
    with appliance.api() as c:
        return c.get(f"{prefix}/course/cmi5/{course}")


def test_cmi5_xml_is_valid_against_the_cmi5_schema(appliance: Appliance) -> None:
    response = _export(appliance)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"].endswith('-cmi5.zip"')
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    structure = archive.read("cmi5.xml")
    xmlschema.XMLSchema(XSD).validate(io.BytesIO(structure))  # raises with the schema's reason
    root = xmlschema.XMLResource(io.BytesIO(structure)).root
    aus = root.findall(f"{NS}au")
    assert len(aus) == 1 and aus[0].get("moveOn") == "CompletedAndPassed"  # the demo has a scored quiz
    assert aus[0].findtext(f"{NS}url") == "index.html" and "index.html" in archive.namelist()
    assert b'src="cmi5.js"' in archive.read("index.html") and "scorm.js" not in archive.namelist()
    assert archive.read("player/cmi5-transport.js") == (WEB_DIR / "player" / "cmi5-transport.js").read_bytes()
    # the same route under /api, and the SCORM export's refusals
    again = zipfile.ZipFile(io.BytesIO(_export(appliance, prefix="/api/v1/headless").content))
    assert again.read("cmi5.xml") == structure and again.namelist() == archive.namelist()
    assert _export(appliance, appliance.ids["draft"]).status_code == 409
    assert _export(appliance, appliance.ids["deleted"]).status_code == 404


class _Lms(SimpleHTTPRequestHandler):
    """The AU's files under /au/, and the three things a cmi5 LMS answers the AU."""

    statements: list[dict[str, Any]]
    fetched: list[str]
    documents: dict[str, Any]  # the AU's own state documents, by registration

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        return self.headers.get("Authorization") == f"Basic {TOKEN}" and self.headers.get(
            "X-Experience-API-Version"
        ) == "1.0.3"

    def do_POST(self) -> None:
        if self.path.startswith("/fetch"):
            self.fetched.append(self.path)  # a fetch URL (one per launch) answers its token once, then an error
            if self.fetched.count(self.path) == 1:
                return self._json(200, {"auth-token": TOKEN})
            return self._json(200, {"error-code": "1", "error-text": "already fetched"})
        self._json(404, {})

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/lrs/activities/state":
            query = parse_qs(parts.query)
            if not self._authorised():
                return self._json(401, {})
            if query["stateId"] == [OUTCOME_STATE]:
                known = self.documents.get(query["registration"][0])
                return self._json(200, known) if known is not None else self._json(404, {})
            if query["stateId"] != ["LMS.LaunchData"]:
                return self._json(404, {})
            return self._json(200, {
                "contextTemplate": {"extensions": {SESSION: "session-1"},
                                    "contextActivities": {"grouping": [{"id": "https://lms.example/course/7"}]}},
                "launchMode": "Normal", "moveOn": "CompletedAndPassed",
            })
        super().do_GET()

    def do_PUT(self) -> None:
        parts = urlsplit(self.path)
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        query = parse_qs(parts.query)
        if parts.path == "/lrs/activities/state" and self._authorised() and query["stateId"] == [OUTCOME_STATE]:
            self.documents[query["registration"][0]] = body
            self.send_response(204)
            self.end_headers()
            return None
        if parts.path != "/lrs/statements" or not self._authorised():
            return self._json(401, {})
        assert parse_qs(parts.query)["statementId"] == [body["id"]]
        self.statements.append(body)
        self.send_response(204)
        self.end_headers()


@pytest.fixture(scope="module")
def cmi5_lms(tmp_path_factory: pytest.TempPathFactory, appliance: Appliance) -> Iterator[tuple[str, Any]]:
    root = tmp_path_factory.mktemp("cmi5-lms")
    unzip(_export(appliance).content, root / "au")
    handler = type("Lms", (_Lms,), {"statements": [], "fetched": [], "documents": {}})
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), partial(handler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_the_au_launches_from_a_cmi5_lms_and_reports_to_its_lrs(page: Any, cmi5_lms: tuple[str, Any]) -> None:
    base, lms = cmi5_lms
    actor = {"objectType": "Agent", "account": {"homePage": "https://lms.example", "name": "learner-7"}}
    registration = str(uuid.uuid4())
    activity = "https://lms.example/au/demo"
    launch = urlencode({"endpoint": f"{base}/lrs", "fetch": f"{base}/fetch", "actor": json.dumps(actor),
                        "registration": registration, "activityId": activity})
    page.goto(f"{base}/au/index.html?{launch}")
    page.wait_for_function("window.__cmi5 && window.__cmi5.state === 'ready'", timeout=15000)
    _complete_demo(page)
    page.evaluate("window.__cmi5.terminate()")  # what pagehide calls; evaluate waits for its statement
    verbs = [s["verb"]["id"].rsplit("/", 1)[1] for s in lms.statements]
    assert verbs == ["initialized", "completed", "passed", "terminated"]
    assert len(lms.fetched) == 1
    for statement in lms.statements:
        assert statement["actor"] == actor and statement["object"]["id"] == activity
        context = statement["context"]
        assert context["registration"] == registration and context["extensions"][SESSION] == "session-1"
        categories = {c["id"] for c in context["contextActivities"]["category"]}
        assert "https://w3id.org/xapi/cmi5/context/categories/cmi5" in categories
        assert context["contextActivities"]["grouping"] == [{"id": "https://lms.example/course/7"}]
    passed = lms.statements[2]
    assert passed["result"]["success"] is True and passed["result"]["score"]["scaled"] == 1.0
    assert validate(lms.statements) == [[]] * 4
    # a second session of the same registration: finishing again reports neither completed nor passed
    # again (cmi5 allows one of each per registration), the LRS's state remembers them
    del lms.statements[:]
    again = launch.replace(urlencode({"fetch": f"{base}/fetch"}), urlencode({"fetch": f"{base}/fetch2"}))
    page.goto(f"{base}/au/index.html?{again}")
    page.wait_for_function("window.__cmi5 && window.__cmi5.state === 'ready'", timeout=15000)
    _complete_demo(page)
    page.evaluate("window.__cmi5.terminate()")
    assert [s["verb"]["id"].rsplit("/", 1)[1] for s in lms.statements] == ["initialized", "terminated"]
    assert lms.documents[registration] == {"completed": True, "passed": True}
