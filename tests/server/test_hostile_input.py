"""No input is a 500 (issue 11): out-of-range integers, non-finite numbers, malformed and deeply
nested JSON get a 4xx in the D1 error body on every route, headless and embed alike.

The integer test walks the app's own route table, so a route added later is probed too."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from litestar import Litestar

from appliance.server.app import route_handlers
from appliance.server.inputs import _int_query_names
from tests.helpers import Install, Server, init_data_dir, start_server

KEYS = {"statusCode", "code", "error", "message"}
HUGE = str(2**63)
NEGATIVE_HUGE = str(-(2**63) - 1)
FORTY_DIGITS = "1234567890" * 4
DEEP = b"[" * 20_000 + b"]" * 20_000
SKIPPED_METHODS = {"OPTIONS", "HEAD"}


def _is_error(response: httpx.Response, status: int, context: str = "") -> dict[str, Any]:
    assert response.status_code == status, f"{context}: {response.status_code} {response.text[:300]}"
    body = response.json()
    assert set(body) == KEYS and body["statusCode"] == status, context
    return body


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Install]]:
    install = init_data_dir(tmp_path_factory.mktemp("hostile") / "data")
    server = start_server(install.data_dir)
    with server.client(install.test_key) as api:
        for name, body in (
            ("view", {"action": "view", "courseId": 1, "identifier": "learner-1"}),
            ("edit", {"action": "edit", "courseId": 1}),
        ):
            url = api.post("/v1/headless/embed/course", json=body)
            assert url.status_code == 200, url.text
            session = api.post("/embed/api/session", json={"token": url.text.rsplit("/", 1)[1]})
            assert session.status_code == 200, session.text
            server.extra[name] = {"Authorization": f"Bearer {session.json()['session']}"}
    yield server, install
    server.stop()


def _headers(server: Server, install: Install, path: str) -> dict[str, str]:
    """The credentials a real caller of that route holds, so the probe reaches the handler."""
    if "/headless" in path:
        return {"Authorization": install.test_key}
    if path.startswith("/embed/api/builder"):
        return dict(server.extra["edit"])
    if path.startswith("/embed/api"):
        return dict(server.extra["view"])
    return {}


def _routes(app: Litestar) -> list[tuple[str, str, Any]]:
    found = []
    for route in app.routes:
        for method, handler in getattr(route, "route_handler_map", {}).items():
            if method in SKIPPED_METHODS:
                continue
            found.append((route.path, method, handler[0] if isinstance(handler, tuple) else handler))
    return found


def _fill(path: str, int_value: str, app: Litestar) -> str:
    route = next(r for r in app.routes if r.path == path)
    for parameter in route.path_parameters.values():
        value = int_value if parameter.type is int else "en"
        path = path.replace("{" + parameter.full + "}", value)
    return path


def test_every_integer_path_and_query_parameter_refuses_64_bit_overflow(hostile: tuple[Server, Install]) -> None:
    server, install = hostile
    app = Litestar(route_handlers=route_handlers())
    routes = _routes(app)
    probed: list[str] = []
    with server.client() as http:
        for path, method, handler in routes:
            headers = _headers(server, install, path)
            if "{" in path and any(":int}" in part for part in path.split("/")):
                for value in (HUGE, NEGATIVE_HUGE):
                    url = _fill(path, value, app)
                    _is_error(http.request(method, url, headers=headers), 422, f"{method} {url}")
                probed.append(f"{method} {path}")
            for name in sorted(_int_query_names(handler)):
                if "{" in path:
                    continue  # the path parameters were probed above; here the query alone
                url = f"{path}?{name}={HUGE}"
                _is_error(http.request(method, url, headers=headers), 422, f"{method} {url}")
                probed.append(f"{method} {path}?{name}")
    # the walk really covered both headless prefixes, the embed player, builder and SCORM routes
    assert {"GET /v1/headless/courses/{course_id:int}", "GET /api/v1/headless/courses/{course_id:int}"} <= set(probed)
    assert "GET /v1/headless/trackings?page" in probed
    assert any("/embed/api/builder/" in p for p in probed) and any("/scorm/api/" in p for p in probed)
    assert len([p for p in probed if "?" not in p]) >= 70
    # 2^63 - 1 is a number SQLite takes: the route answers as for any unknown id
    with server.client(install.test_key) as api:
        _is_error(api.get(f"/v1/headless/courses/{2**63 - 1}"), 404)
    assert "unhandled error" not in server.log()


def test_huge_numbers_in_json_bodies(hostile: tuple[Server, Install]) -> None:
    server, install = hostile
    json_type = {"content-type": "application/json"}
    with server.client(install.test_key) as api:
        for raw in ('{"action": "view", "courseId": 1e999}', f'{{"action": "view", "courseId": {FORTY_DIGITS}}}',
                    f'{{"action": "view", "courseId": -{FORTY_DIGITS}}}', '{"action": "view", "courseId": 1e300}'):
            for prefix in ("/v1/headless", "/api/v1/headless"):
                _is_error(api.post(f"{prefix}/embed/course", content=raw, headers=json_type), 422, raw)
        # a form body carries numbers as text: the same range holds
        _is_error(api.post("/v1/headless/embed/course", data={"action": "view", "courseId": FORTY_DIGITS}), 422)
        _is_error(api.post("/v1/headless/embed/course", data={"action": "view", "courseId": "1", "options": DEEP.decode()}), 422)
        # NaN and Infinity are not JSON at all
        for raw in ('{"courseId": NaN}', '{"courseId": Infinity}', '{"courseId": 1'):
            _is_error(api.post("/v1/headless/embed/course", content=raw, headers=json_type), 400, raw)
        # a typed (msgspec) body and an AI route the decoding layer covers without touching them
        _is_error(api.put("/v1/headless/themes/1", content=b'{"name": "x", "logo": [1e999]}', headers=json_type), 422)
        _is_error(api.post("/v1/headless/generate/course/document", content=f'{{"documentId": {FORTY_DIGITS}}}',
                           headers=json_type), 422)
    with server.client() as http:
        view = server.extra["view"]
        for raw in ('{"event": "progress", "progress": 1e999}', f'{{"event": "progress", "progress": {FORTY_DIGITS}}}',
                    f'{{"event": "start", "courseId": {HUGE}}}'):
            _is_error(http.post("/embed/api/track", content=raw, headers={**view, **json_type}), 422, raw)
        # the player still tracks normal progress afterwards
        ok = http.post("/embed/api/track", json={"event": "progress", "progress": 40}, headers=view)
        assert ok.status_code == 200 and ok.json()["tracking"]["progress"] == 40, ok.text
        # builder routes read `course` from the query by hand: the SQLite boundary answers 422
        _is_error(http.get("/embed/api/builder/", params={"course": HUGE}, headers=server.extra["edit"]), 422)
    assert "unhandled error" not in server.log()


@pytest.mark.parametrize(
    "method,path,who",
    [
        ("POST", "/v1/headless/themes", "key"),  # typed msgspec body
        ("POST", "/api/v1/headless/embed/course", "key"),  # loose_body (JSON or form)
        ("DELETE", "/v1/headless/tracking", "key"),  # a DELETE with a JSON or form body
        ("POST", "/v1/headless/generate/course", "key"),  # AI route (appliance/ai untouched)
        ("POST", "/v1/headless/generate/course/document", "key"),  # documents route (untouched)
        ("POST", "/embed/api/track", "view"),
        ("POST", "/embed/api/session", None),
        ("PUT", "/embed/api/builder/", "edit"),
        ("POST", "/scorm/api/track", None),
        ("POST", "/embed/csp-report", None),
        ("POST", "/no/such/route", None),
    ],
)
def test_deep_and_malformed_json_is_400(hostile: tuple[Server, Install], method: str, path: str, who: str | None) -> None:
    server, install = hostile
    headers = {"Authorization": install.test_key} if who == "key" else dict(server.extra[who]) if who else {}
    with server.client() as http:
        for content_type in ("application/json", "text/plain", None):
            typed = {**headers, **({"content-type": content_type} if content_type else {})}
            body = _is_error(http.request(method, path, content=DEEP, headers=typed), 400, f"{path} {content_type}")
            assert "nested too deeply" in body["message"]
            _is_error(http.request(method, path, content=b'{"a": [1, 2', headers=typed), 400, path)
        # 64 levels are fine for the decoding layer (the route answers what it answers, not 400)
        ok_depth = json.dumps(json.loads("[" * 63 + "]" * 63))
        answer = http.request(method, path, content=ok_depth.encode(), headers={**headers, "content-type": "application/json"})
        assert answer.status_code != 400 or "nested" not in answer.text
        assert answer.status_code < 500, answer.text
    assert "unhandled error" not in server.log()


def test_repeated_slashes_route_as_meant(hostile: tuple[Server, Install]) -> None:
    """A base URL with a trailing slash yields `//`: the right answer, not a misleading 401."""
    server, install = hostile
    with server.client(install.test_key) as api:
        for path in ("/api//v1/headless/setup/status", "/v1//headless///setup/status", "/v1/headless//courses"):
            answer = api.get(path)
            assert answer.status_code == 200, f"{path}: {answer.text}"
        _is_error(server.client().get("/api//v1/headless/setup/status"), 401)  # still authenticated


def test_learner_tracking_fields_are_checked_against_the_contract(hostile: tuple[Server, Install]) -> None:
    """The learner's browser writes POST /embed/api/track: every field is typed, ranged and bounded,
    and a refused field stores nothing."""
    server, install = hostile
    view = server.extra["view"]
    script = "<script>alert(1)</script>"
    refused: list[dict[str, Any]] = [
        *({"event": "feedback", "feedback": bad} for bad in (script, 9, -3, 0, 6, 2.5, True, "x", "4", None, [], {})),
        {"event": "feedback"},
        {"event": "progress", "progress": -3},
        {"event": "progress", "progress": 101},
        {"event": "progress", "progress": "50"},
        {"event": "progress"},
        {"event": "attempt"},
        {"event": "attempt", "screenId": "s" * 101},
        {"event": "attempt", "screenId": 1, "answers": "x"},
        {"event": "attempt", "screenId": 1, "answers": {"q": [{"nested": 1}]}},
        {"event": "attempt", "screenId": 1, "screenIndex": -1},
        {"event": "start", "seconds": -1},
        {"event": "start", "seconds": "x"},
        {"event": "start", "courseId": "1"},
        {"event": script},
        {"event": ["start"]},
    ]
    with server.client() as http:
        for body in refused:
            _is_error(http.post("/embed/api/track", json=body, headers=view), 422, json.dumps(body))
        _is_error(http.post("/embed/api/track", content=f'{{"event": "feedback", "feedback": {HUGE}}}',
                            headers={**view, "content-type": "application/json"}), 422)
        rated = http.post("/embed/api/track", json={"event": "feedback", "feedback": 4, "seconds": 3}, headers=view)
        assert rated.status_code == 200, rated.text
    with server.client(install.test_key) as api:
        listed = api.get("/v1/headless/trackings", params={"id": 1})
        assert listed.status_code == 200 and listed.headers["content-type"].startswith("application/json")
        assert "<script" not in listed.text
        (row,) = [r for r in listed.json() if r["identifier"] == "learner-1"]
        assert row["feedback"] == "4"  # data: the rating as stored, a JSON string
        user = api.get("/v1/headless/user/trackings", params={"identifier": "learner-1"})
        assert user.status_code == 200 and "<script" not in user.text, user.text


def _log_lines(server: Server) -> list[dict[str, Any]]:
    lines = []
    for line in server.log().splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue
    return lines


def test_every_log_line_inside_a_request_names_it(hostile: tuple[Server, Install]) -> None:
    """The 500 body sends operators to the logs with X-Request-Id: every line a request logs has it."""
    server, _ = hostile
    with server.client() as http:
        refused = http.get("/embed/course/not-a-token-at-all")  # logs "embed link refused"
        overflow = http.get("/embed/api/builder/", params={"course": HUGE}, headers=server.extra["edit"])
    assert refused.status_code == 401 and overflow.status_code == 422
    # the access line is written after the response's last byte: wait for it (at most 5 s)
    deadline = time.monotonic() + 5
    while True:
        lines = _log_lines(server)
        seen = {line.get("request_id") for line in lines if line.get("msg") == "request"}
        if {refused.headers["x-request-id"], overflow.headers["x-request-id"]} <= seen or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    for response, message in ((refused, "embed link refused"), (overflow, "number out of range")):
        request_id = response.headers["x-request-id"]
        mine = [line for line in lines if line.get("request_id") == request_id]
        assert {line["msg"] for line in mine} >= {message, "request"}, mine
    # lines outside any request (start-up) carry none
    assert "request_id" not in next(line for line in lines if line.get("msg") == "listening")
