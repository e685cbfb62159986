"""`GET /v1/headless/course/scorm/{id}` over HTTP against a running appliance, and the dynamic
package's own API (`/scorm/api/*`)."""

from __future__ import annotations

import io
import json
import time
import zipfile
from typing import Any
from xml.etree import ElementTree as ET

import httpx

from tests.helpers import cli, create_key
from tests.scorm.conftest import Appliance

DEMO = 1


def _zip(response: httpx.Response) -> zipfile.ZipFile:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/zip")
    return zipfile.ZipFile(io.BytesIO(response.content))


def _config(archive: zipfile.ZipFile) -> dict[str, Any]:
    text = archive.read("package.js").decode()
    value: dict[str, Any] = json.loads(text.split("export default ", 1)[1].rstrip().rstrip(";"))
    return value


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["statusCode"] == status and body["code"] == code and body["message"]
    return body


def test_defaults_are_dynamic_scorm2004(appliance: Appliance) -> None:
    with appliance.api() as c:
        response = c.get(f"/v1/headless/course/scorm/{DEMO}")
    archive = _zip(response)
    assert 'filename="new-starter-induction-scorm2004-dynamic.zip"' in response.headers["content-disposition"]
    names = archive.namelist()
    assert names[0] == "imsmanifest.xml"
    for wanted in ("index.html", "scorm.js", "package.js", "app.css", "player/player.js", "player/screens.js",
                   "player/scorm-transport.js", "vendor/preact.module.js", "vendor/LICENSE-preact.txt"):
        assert wanted in names, wanted
    assert not any(n in names for n in ("course.js", "collection.js", "analytics.js"))  # embed-only entries
    manifest = ET.fromstring(archive.read("imsmanifest.xml"))
    assert manifest.tag == "{http://www.imsglobal.org/xsd/imscp_v1p1}manifest"
    config = _config(archive)
    assert config["mode"] == "dynamic" and config["version"] == "2004" and config["course"] is None
    assert config["appliance"] == appliance.url and config["token"].count(".") == 2
    assert "key" not in config
    # a test-environment package expires 30 days after export
    assert abs(config["expires"] - (time.time() + 30 * 86400)) < 120
    # the player in the package is the embed's, byte for byte
    from appliance.scorm.package import WEB_DIR

    assert archive.read("player/player.js") == (WEB_DIR / "player" / "player.js").read_bytes()
    assert archive.read("index.html") == (WEB_DIR / "scorm.html").read_bytes()


def test_static_scorm12_under_both_prefixes(appliance: Appliance) -> None:
    with appliance.api() as c:
        for prefix in ("/v1/headless", "/api/v1/headless"):
            archive = _zip(c.get(f"{prefix}/course/scorm/{DEMO}", params={"type": "static", "version": "1.2"}))
            config = _config(archive)
            assert config["mode"] == "static" and config["version"] == "1.2" and "token" not in config
            assert config["course"]["title"] == "New starter induction"
            assert config["key"]["4"]["questions"][0]["correct"] == [1]  # offline grading needs the key
            manifest = ET.fromstring(archive.read("imsmanifest.xml"))
            assert manifest.findtext("{http://www.imsproject.org/xsd/imscp_rootv1p1p2}metadata/"
                                     "{http://www.imsproject.org/xsd/imscp_rootv1p1p2}schemaversion") == "1.2"
            files = {f.get("href") for f in manifest.iter("{http://www.imsproject.org/xsd/imscp_rootv1p1p2}file")}
            assert files == set(archive.namelist()) - {"imsmanifest.xml"}


def test_static_assets_are_files_in_the_package(appliance: Appliance) -> None:
    with appliance.api() as c:
        archive = _zip(c.get(f"/v1/headless/course/scorm/{appliance.ids['media']}", params={"type": "static"}))
    assets = [n for n in archive.namelist() if n.startswith("assets/")]
    assert len(assets) == 1 and assets[0].endswith(".png")
    assert archive.read(assets[0]).startswith(b"\x89PNG")
    assert "data:" not in archive.read("package.js").decode()


def test_production_packages_do_not_expire_and_are_reproducible(appliance: Appliance) -> None:
    course = appliance.ids["production"]
    with appliance.api(appliance.production_key) as c:
        first = c.get(f"/v1/headless/course/scorm/{course}", params={"type": "static"})
        second = c.get(f"/v1/headless/course/scorm/{course}", params={"type": "static"})
        dynamic = _config(_zip(c.get(f"/v1/headless/course/scorm/{course}")))
    assert _config(_zip(first))["expires"] is None and _config(_zip(first))["environment"] == "production"
    assert first.content == second.content  # deterministic: same course, same bytes
    assert dynamic["expires"] is None
    payload = json.loads(httpx.get(f"{appliance.url}/health").text and _b64(dynamic["token"].split(".")[1]))
    assert payload["exp"] - time.time() > 40 * 365 * 86400 and payload["environment"] == "production"


def _b64(part: str) -> str:
    import base64

    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode()


def test_bad_parameters_are_422(appliance: Appliance) -> None:
    with appliance.api() as c:
        _error(c.get(f"/v1/headless/course/scorm/{DEMO}", params={"type": "live"}), 422, "UNPROCESSABLE_ENTITY")
        _error(c.get(f"/v1/headless/course/scorm/{DEMO}", params={"version": "2004.3"}), 422, "UNPROCESSABLE_ENTITY")
        _error(c.get(f"/v1/headless/course/scorm/{DEMO}", params={"version": "1.3"}), 422, "UNPROCESSABLE_ENTITY")


def test_unknown_deleted_and_other_tenant_courses_are_404(appliance: Appliance) -> None:
    media = appliance.ids["media"]  # owned by ann @ acme
    with appliance.api() as c:
        _error(c.get("/v1/headless/course/scorm/999"), 404, "NOT_FOUND")
        _error(c.get(f"/v1/headless/course/scorm/{appliance.ids['deleted']}"), 404, "NOT_FOUND")
        _error(c.get(f"/v1/headless/course/scorm/{media}", params={"identifier": "bob"}), 404, "NOT_FOUND")
        _error(c.get(f"/v1/headless/course/scorm/{media}", params={"clientIdentifier": "globex"}), 404, "NOT_FOUND")
        assert c.get(f"/v1/headless/course/scorm/{media}", params={"identifier": "ann", "clientIdentifier": "acme"}).status_code == 200
        _error(c.get(f"/v1/headless/course/scorm/{appliance.ids['draft']}"), 409, "CONFLICT")
    # the same id in the production environment and in another workspace is another (absent) course
    with appliance.api(appliance.production_key) as c:
        _error(c.get(f"/v1/headless/course/scorm/{media}"), 404, "NOT_FOUND")
    ws = int(cli("workspace", "create", "--name", "Other", data_dir=appliance.install.data_dir).stdout)
    other = create_key(appliance.install.data_dir, ws, "test")
    with appliance.api(other) as c:
        _error(c.get(f"/v1/headless/course/scorm/{media}"), 404, "NOT_FOUND")


def test_scorm_entitlement_is_403(appliance: Appliance) -> None:
    data_dir = appliance.install.data_dir
    ws = int(cli("workspace", "create", "--name", "No SCORM", data_dir=data_dir).stdout)
    key = create_key(data_dir, ws, "test")
    cli("workspace", "entitlement", "--workspace", str(ws), "scorm", "off", data_dir=data_dir)
    with appliance.api(key) as c:
        _error(c.get(f"/v1/headless/course/scorm/{DEMO}"), 403, "FORBIDDEN")
        _error(c.get(f"/v1/headless/course/scorm/{DEMO}", params={"type": "static"}), 403, "FORBIDDEN")
        assert c.get(f"/v1/headless/courses/{DEMO}").status_code == 200
    cli("workspace", "entitlement", "--workspace", str(ws), "scorm", "on", data_dir=data_dir)
    with appliance.api(key) as c:
        assert c.get(f"/v1/headless/course/scorm/{DEMO}").status_code == 200


def test_the_export_is_audited_with_its_course(appliance: Appliance) -> None:
    with appliance.api() as c:
        assert c.get(f"/v1/headless/course/scorm/{DEMO}", params={"type": "static"}).status_code == 200
    lines = cli("audit", "export", data_dir=appliance.install.data_dir).stdout.splitlines()
    entries = [json.loads(line) for line in lines if line.strip()]
    exports = [e for e in entries if "/course/scorm/" in json.dumps(e)]
    assert exports, entries[-3:]
    assert any(f"course:{DEMO}" in json.dumps(e) for e in exports), exports[-1]
    assert not any("scorm-package+jwt" in json.dumps(e) for e in entries)


def _token(appliance: Appliance, course: int = DEMO) -> str:
    with appliance.api() as c:
        return str(_config(_zip(c.get(f"/v1/headless/course/scorm/{course}")))["token"])


def test_package_token_is_single_purpose(appliance: Appliance) -> None:
    token = _token(appliance)
    bearer = {"Authorization": f"Bearer {token}"}
    course = httpx.get(f"{appliance.url}/scorm/api/course", headers={**bearer, "Origin": "http://lms.example"})
    assert course.status_code == 200 and course.headers["access-control-allow-origin"] == "*"
    screens = course.json()["course"]["screens"]
    assert screens[3]["type"] == "quiz" and "correct" not in json.dumps(screens)  # answers withheld
    preflight = httpx.options(
        f"{appliance.url}/scorm/api/track",
        headers={"Origin": "http://lms.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"},
    )
    assert preflight.status_code in (200, 204)
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    # not an API key, not an embed link, not an embed session
    assert httpx.get(f"{appliance.url}/v1/headless/courses", headers={"Authorization": token}).status_code == 401
    assert httpx.get(f"{appliance.url}/v1/headless/courses", headers=bearer).status_code == 401
    assert httpx.post(f"{appliance.url}/embed/api/session", json={"token": token}).status_code == 401
    assert httpx.get(f"{appliance.url}/embed/api/course", headers=bearer).status_code == 401
    assert httpx.get(f"{appliance.url}/embed/course/{token}", headers={"Accept": "application/json"}).status_code == 401
    # and embed tokens, forged or expired tokens are not package tokens
    for bad in (appliance.expired_token, token[:-4] + "AAAA", "-", "x.y.z"):
        refused = httpx.get(f"{appliance.url}/scorm/api/course", headers={"Authorization": f"Bearer {bad}"})
        _error(refused, 401, "UNAUTHORIZED")
        assert refused.headers["access-control-allow-origin"] == "*"  # the launcher can read why


def test_package_tracking_is_graded_server_side(appliance: Appliance) -> None:
    token = _token(appliance)
    headers = {"Authorization": f"Bearer {token}"}
    learner = {"id": "api-learner", "name": "Api Learner"}
    url = f"{appliance.url}/scorm/api/track"
    assert httpx.post(url, headers=headers, json={"event": "start", "learner": learner}).status_code == 200
    wrong = httpx.post(url, headers=headers, json={"event": "attempt", "learner": learner, "screenId": 4, "answers": {"1": [2]}})
    assert wrong.json()["score"] == 0 and wrong.json()["passed"] is False
    right = httpx.post(url, headers=headers, json={"event": "attempt", "learner": learner, "screenId": 4, "answers": {"1": [1]}})
    assert right.json()["score"] == 100 and right.json()["passed"] is True
    _error(httpx.post(url, headers=headers, json={"event": "teleport", "learner": learner}), 422, "UNPROCESSABLE_ENTITY")
    # the learner's fields come from the LMS page: typed and bounded like every tracked field
    for bad in ("x", {"id": ["a"]}, {"id": "a", "name": "n" * 201}, {"id": "i" * 201}):
        _error(httpx.post(url, headers=headers, json={"event": "start", "learner": bad}), 422, "UNPROCESSABLE_ENTITY")
    _error(httpx.post(url, headers=headers, json={"event": "feedback", "feedback": "<b>5</b>", "learner": learner}),
           422, "UNPROCESSABLE_ENTITY")
    with appliance.api() as c:
        rows = c.get("/v1/headless/trackings", params={"id": DEMO, "identifier": "scorm:api-learner"}).json()
    assert len(rows) == 1 and rows[0]["scorm"] is True and rows[0]["completed"] is None


def test_package_narration_route_is_scoped_to_its_course(appliance: Appliance) -> None:
    """`GET /scorm/api/narration/{screenId}`: the token's own course's clips only, same refusals."""
    narrated = appliance.ids["narrated"]
    url = f"{appliance.url}/scorm/api/narration"
    own = {"Authorization": f"Bearer {_token(appliance, narrated)}", "Origin": "http://lms.example"}
    clip = httpx.get(f"{url}/1", headers=own)
    assert clip.status_code == 200 and clip.content[:4] == b"RIFF" and clip.content[8:12] == b"WAVE"
    assert clip.headers["content-type"].startswith("audio/wav") and clip.headers["access-control-allow-origin"] == "*"
    _error(httpx.get(f"{url}/2", headers=own), 404, "NOT_FOUND")  # screen 2 has no clip
    # another course's token does not reach this course's clips (the demo has none: 404, not the clip)
    _error(httpx.get(f"{url}/1", headers={"Authorization": f"Bearer {_token(appliance)}"}), 404, "NOT_FOUND")
    for bad in (appliance.expired_token, "x.y.z"):
        _error(httpx.get(f"{url}/1", headers={"Authorization": f"Bearer {bad}"}), 401, "UNAUTHORIZED")
    _error(httpx.get(f"{url}/1"), 401, "UNAUTHORIZED")
    # an API key is not a package token
    _error(httpx.get(f"{url}/1", headers={"Authorization": appliance.install.test_key}), 401, "UNAUTHORIZED")
    preflight = httpx.options(
        f"{url}/1", headers={"Origin": "http://lms.example", "Access-Control-Request-Method": "GET",
                             "Access-Control-Request-Headers": "authorization"},
    )
    assert preflight.status_code in (200, 204) and preflight.headers["access-control-allow-origin"] == "*"


def test_packages_without_narration_carry_no_clips(appliance: Appliance) -> None:
    with appliance.api() as c:
        archive = _zip(c.get(f"/v1/headless/course/scorm/{DEMO}", params={"type": "static"}))
    assert not any(n.startswith("narration/") for n in archive.namelist())
