"""Every headless route of coassemble-api.md §2 that this release serves, under both prefixes:
shapes, defaults, pagination, and the 401/403/404/422 bodies."""

from __future__ import annotations

import pytest
from litestar import Litestar

from appliance import config
from appliance.courses import service as courses
from appliance.learners.identities import ensure_identity
from appliance.learners.trackings import record_progress
from appliance.runtime import open_runtime
from appliance.server.app import route_handlers
from tests.helpers import Install, Server, cli, create_key

PREFIXES = ("/v1/headless", "/api/v1/headless")
COURSE_FIELDS = {
    "id", "title", "description", "key", "image", "thumbnail", "active", "identified", "private", "identifier",
    "clientIdentifier", "revision", "published", "created", "updated", "deleted", "legacy", "type", "theme",
    "start", "finish", "screens", "translations", "paid", "is_sharable", "emails",
}
SNAKE_TRACKING = {"id", "identifier", "email", "name", "commenced", "completed", "passed", "progress_percent",
                  "score", "total_time", "feedback", "language", "scorm"}
# (method, path) of every route, with ids that exist in the populated workspace
ROUTES = [
    ("GET", "/courses"), ("GET", "/courses/1"), ("DELETE", "/course/999"), ("POST", "/course/999/restore"),
    ("POST", "/course/999/duplicate"), ("POST", "/course/999/publish"), ("POST", "/course/999/revert"),
    ("GET", "/course/content/1"), ("GET", "/course/scorm/1"), ("GET", "/clients"), ("GET", "/client/acme"),
    ("PUT", "/client/acme"), ("DELETE", "/client/nobody"), ("GET", "/users"), ("GET", "/user/ann"),
    ("PUT", "/user/ann"), ("DELETE", "/user/nobody"), ("GET", "/trackings?id=1"), ("GET", "/tracking/1"),
    ("DELETE", "/tracking"), ("GET", "/screen/trackings?id=1"), ("GET", "/user/trackings?identifier=ann"),
    ("GET", "/collections"), ("GET", "/collections/1"), ("POST", "/collection"), ("DELETE", "/collection/999"),
    ("POST", "/collection/999/restore"), ("GET", "/collection/trackings?id=1"), ("GET", "/collection/tracking/1"),
    ("GET", "/themes"), ("POST", "/themes"), ("GET", "/usage/allowances"), ("GET", "/usage/clients"),
    ("GET", "/usage/client/acme"), ("PUT", "/usage/client/acme"), ("GET", "/setup/status"),
]


def _error(response, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"statusCode", "code", "error", "message"} and body["code"] == code


def served_routes(prefix: str) -> set[tuple[str, str]]:
    """(method, path) of every route the real app serves under `prefix`, read off Litestar's route
    table, with path parameters filled by ids and names that exist nowhere (no side effects)."""
    app = Litestar(route_handlers=route_handlers())
    found = set()
    for route in app.routes:
        if not route.path.startswith(prefix + "/"):
            continue
        path = route.path
        for parameter in route.path_parameters.values():
            path = path.replace("{" + parameter.full + "}", "424242" if parameter.type is int else "route-probe")
        for method in getattr(route, "route_handler_map", {}):
            if method not in ("HEAD", "OPTIONS"):
                found.add((method, path.removeprefix(prefix)))
    return found


def test_the_route_list_is_the_served_route_table() -> None:
    """Both prefixes serve the same routes, and every route this file probes by hand is one of them
    (a path nobody serves also answers 401 without a key: it would prove nothing)."""
    served = served_routes(PREFIXES[0])
    assert len(served) >= 60 and served == served_routes(PREFIXES[1])
    paths = {(m, p) for m, p in served}
    for method, path in ROUTES:
        bare = path.split("?")[0]
        assert any(m == method and _same_route(p, bare) for m, p in paths), (method, path)


def _same_route(template: str, path: str) -> bool:
    """`/courses/424242` (a filled route) matches `/courses/1` (a hand-written one)."""
    a, b = template.split("/"), path.split("/")
    return len(a) == len(b) and all(x == y or x in ("424242", "route-probe") for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("prefix", PREFIXES)
def test_every_route_needs_the_key(api: tuple[Server, Install], prefix: str) -> None:
    server, install = api
    routes = sorted(served_routes(prefix))
    with server.client() as anonymous, server.client(install.test_key) as keyed:
        # what a path nobody serves answers: 401 without a key, and with one ...
        _error(anonymous.get(f"{prefix}/no-such-route"), 401, "UNAUTHORIZED")
        nowhere = keyed.get(f"{prefix}/no-such-route")
        assert nowhere.status_code == 404, nowhere.text
        for method, path in routes:
            _error(anonymous.request(method, prefix + path, json=[]), 401, "UNAUTHORIZED")
            # ... while with the key each route is found: its own answer (a body no route accepts,
            # ids that do not exist, also in `?id=`: nothing is created), never the no-such-route
            # answer, never 401/405
            answer = keyed.request(method, prefix + path, json="probe", params={"id": "424242"})
            assert answer.status_code not in (401, 405), (method, path, answer.text)
            assert (answer.status_code, answer.text) != (404, nowhere.text), (method, path)


@pytest.mark.parametrize("prefix", PREFIXES)
def test_course_shapes_and_filters(api: tuple[Server, Install], prefix: str) -> None:
    server, install = api
    c = server.client(install.test_key)
    courses = c.get(f"{prefix}/courses").json()
    assert isinstance(courses, list) and len(courses) == 1
    course = courses[0]
    assert set(course) >= COURSE_FIELDS
    assert course["published"] and course["revision"] == 1 and course["deleted"] is None
    assert course["paid"] is False and course["is_sharable"] is False and course["emails"] == []  # cloud types
    screen = course["screens"][0]
    assert {"id", "title", "sequence", "type", "object", "scored", "passing_grade", "questions"} <= set(screen)
    assert {"id", "name", "title", "icon", "premium", "completable"} <= set(screen["type"])
    assert c.get(f"{prefix}/courses", params={"identifier": "ann"}).json()[0]["id"] == 1
    assert c.get(f"{prefix}/courses", params={"identifier": "bob"}).json() == []
    assert c.get(f"{prefix}/courses", params={"clientIdentifier": "globex"}).json() == []
    assert c.get(f"{prefix}/courses/1").json() == course
    # an owner named in the query does not hide a course of the same workspace: Moodle opens other
    # teachers' and library courses with ?identifier=<current teacher>&clientIdentifier=<site>
    for owner in ({"identifier": "bob"}, {"clientIdentifier": "globex"}, {"identifier": "bob", "clientIdentifier": "globex"}):
        assert c.get(f"{prefix}/courses/1", params=owner).json() == course
    # ... while another environment's (or workspace's) course stays out of reach
    production = server.client(server.extra["production_key"])
    _error(production.get(f"{prefix}/courses/1", params={"identifier": "ann"}), 404, "NOT_FOUND")
    manifest = c.get(f"{prefix}/course/content/1").json()
    assert manifest["id"] == 1 and manifest["languages"][0]["language"] == "en"
    assert len(manifest["languages"][0]["screens"]) == len(course["screens"])


def test_course_lifecycle(api: tuple[Server, Install]) -> None:
    server, install = api
    c = server.client(install.test_key)
    copy = c.post("/v1/headless/course/1/duplicate", json={"identifier": "cat", "clientIdentifier": "globex"}).json()
    assert copy["id"] != 1 and copy["identifier"] == "cat" and copy["clientIdentifier"] == "globex"
    assert copy["published"] is None and copy["title"].startswith("New starter induction")
    cid = copy["id"]
    _error(c.post(f"/v1/headless/course/{cid}/revert"), 409, "CONFLICT")  # never published
    published = c.post(f"/api/v1/headless/course/{cid}/publish").json()
    assert published["published"] and published["revision"] == 1
    assert c.post(f"/v1/headless/course/{cid}/revert").json()["revision"] == 1
    deleted = c.delete(f"/v1/headless/course/{cid}").json()
    assert deleted["deleted"]
    assert cid not in [x["id"] for x in c.get("/v1/headless/courses").json()]
    assert [x["id"] for x in c.get("/v1/headless/courses", params={"deleted": "true"}).json()] == [cid]
    assert c.post(f"/v1/headless/course/{cid}/restore").json()["deleted"] is None
    assert cid in [x["id"] for x in c.get("/v1/headless/courses").json()]
    assert c.post("/v1/headless/course/1/duplicate").json()["identifier"] == "ann"  # no body: same owner
    _error(c.post("/v1/headless/course/999/duplicate"), 404, "NOT_FOUND")
    _error(c.post("/v1/headless/course/1/duplicate", json=[1]), 422, "UNPROCESSABLE_ENTITY")
    scorm = c.get("/v1/headless/course/scorm/1")  # the package itself: tests/scorm
    assert scorm.status_code == 200 and scorm.headers["content-type"].startswith("application/zip")


def test_identities(api: tuple[Server, Install]) -> None:
    server, install = api
    c = server.client(install.test_key)
    clients = {x["clientIdentifier"]: x for x in c.get("/v1/headless/clients").json()}
    assert clients["acme"]["userCount"] == 2 and clients["globex"]["userCount"] == 1
    assert len(c.get("/v1/headless/clients", params={"length": 1, "page": 1}).json()) == 1
    updated = c.put("/v1/headless/client/acme", json={"metadata": {"tier": "gold"}}).json()
    assert updated["metadata"] == {"tier": "gold"}
    replaced = c.put("/v1/headless/client/acme", json={"metadata": {"region": "eu"}}).json()
    assert replaced["metadata"] == {"region": "eu"}  # replaces, no merge
    _error(c.put("/v1/headless/client/nobody", json={"metadata": {}}), 404, "NOT_FOUND")
    users = c.get("/v1/headless/users", params={"clientIdentifier": "acme"}).json()
    assert {u["identifier"] for u in users} == {"ann", "bob"}
    assert set(users[0]) >= {"identifier", "clientIdentifier", "name", "avatar", "testMode", "created", "updated"}
    user = c.put("/v1/headless/user/bob", json={"metadata": {"team": "red"}, "name": "Bobby"}).json()
    assert user["metadata"] == {"team": "red"} and user["name"] == "Bobby"
    _error(c.get("/v1/headless/user/nobody"), 404, "NOT_FOUND")
    _error(c.delete("/v1/headless/user/bob", params={"action": "explode"}), 422, "UNPROCESSABLE_ENTITY")
    _error(c.delete("/v1/headless/user/bob", params={"action": "reallocate"}), 422, "UNPROCESSABLE_ENTITY")


def test_trackings(api: tuple[Server, Install]) -> None:
    server, install = api
    c = server.client(install.test_key)
    _error(c.get("/v1/headless/trackings"), 422, "UNPROCESSABLE_ENTITY")
    rows = c.get("/v1/headless/trackings", params={"id": 1}).json()
    assert {r["identifier"] for r in rows} == {"ann", "bob", "cat"}
    assert all(set(r) == SNAKE_TRACKING for r in rows)
    ann = next(r for r in rows if r["identifier"] == "ann")
    assert ann["progress_percent"] == 50 and ann["total_time"] == 90  # progress never decreases
    bob = next(r for r in rows if r["identifier"] == "bob")
    assert bob["completed"] and bob["passed"] is True and bob["score"] == 80 and bob["progress_percent"] == 100
    assert [r["identifier"] for r in c.get("/v1/headless/trackings", params={"id": 1, "completed": "true"}).json()] == ["bob"]
    assert len(c.get("/v1/headless/trackings", params={"id": 1, "clientIdentifier": "acme"}).json()) == 2
    pages = [c.get("/v1/headless/trackings", params={"id": 1, "length": 2, "page": p}).json() for p in range(3)]
    assert [len(p) for p in pages] == [2, 1, 0]  # 0-based, short last page
    _error(c.get("/v1/headless/trackings", params={"id": 1, "start": "yesterday"}), 422, "UNPROCESSABLE_ENTITY")
    assert c.get("/v1/headless/trackings", params={"id": 1, "start": "2999-01-01"}).json() == []
    one = c.get(f"/v1/headless/tracking/{bob['id']}").json()
    assert one["identifier"] == "bob" and one["course_id"] == 1
    screens = c.get("/v1/headless/screen/trackings", params={"id": 1}).json()
    assert next(s for s in screens if s["identifier"] == "bob")["attempts"][0]["score"] == 80
    envelope = c.get("/v1/headless/user/trackings", params={"identifier": "bob"}).json()
    assert set(envelope) == {"identifier", "clientIdentifier", "name", "avatar", "totals", "trackings"}
    assert envelope["totals"]["completed"] == 1
    assert {"progressPercent", "scorePercent", "totalTime", "courseId"} <= set(envelope["trackings"][0])
    _error(c.get("/v1/headless/user/trackings", params={"identifier": "route-probe"}), 404, "NOT_FOUND")
    form = c.request("DELETE", "/v1/headless/tracking", data={"id": "1", "identifier": "cat"})
    assert form.json() == {"message": "Tracking record deleted"}
    _error(c.request("DELETE", "/v1/headless/tracking", json={"id": 1, "identifier": "cat"}), 404, "NOT_FOUND")
    _error(c.request("DELETE", "/v1/headless/tracking", json={"id": 1}), 422, "UNPROCESSABLE_ENTITY")


def test_collections(api: tuple[Server, Install]) -> None:
    server, install = api
    c = server.client(install.test_key)
    created = c.post("/v1/headless/collection", json={"title": "Onboarding path", "courseIds": [1], "identifier": "ann"})
    assert created.status_code == 200, created.text
    col = created.json()
    assert col["courseIds"] == [1] and col["deleted"] is None and set(col) >= {"id", "title", "key", "active"}
    _error(c.post("/v1/headless/collection", json={"title": "x", "courseIds": [424242]}), 422, "UNPROCESSABLE_ENTITY")
    _error(c.post("/v1/headless/collection", json={"courseIds": [1]}), 422, "UNPROCESSABLE_ENTITY")
    assert c.get(f"/v1/headless/collections/{col['id']}").json()["title"] == "Onboarding path"
    assert c.delete(f"/v1/headless/collection/{col['id']}").json()["deleted"]
    assert col["id"] not in [x["id"] for x in c.get("/v1/headless/collections").json()]
    assert c.post(f"/v1/headless/collection/{col['id']}/restore").json()["deleted"] is None
    assert c.get("/v1/headless/collection/trackings", params={"id": col["id"]}).json() == []
    _error(c.get("/v1/headless/collection/tracking/9999"), 404, "NOT_FOUND")


def test_usage_and_setup_status(api: tuple[Server, Install]) -> None:
    server, install = api
    c = server.client(install.test_key)
    allowances = c.get("/v1/headless/usage/allowances").json()
    assert {a["metric"] for a in allowances} == {"identified_recipients", "anonymous_recipients",
                                                 "narration_tokens", "image_generations"}
    assert all(a["currentUsage"] == 0 for a in allowances)  # test learners never count
    rows = c.put("/v1/headless/usage/client/acme", json={"metric": "identified_recipients", "limit": 25}).json()
    assert next(r for r in rows if r["metric"] == "identified_recipients")["limit"] == 25
    _error(c.put("/v1/headless/usage/client/acme", json={"metric": "bananas"}), 422, "UNPROCESSABLE_ENTITY")
    assert "data" in c.get("/v1/headless/usage/clients").json()
    c.get("/v1/headless/courses/31337")  # a failure the status page should explain
    status = c.get("/v1/headless/setup/status").json()
    assert status["demoCourseId"] == 1 and status["keyMode"] == "test"
    assert status["course"]["id"] == 1 and status["course"]["published"]
    assert status["lastFailure"]["status"] == 404 and status["lastFailure"]["fix"]
    assert "31337" in status["lastFailure"]["route"]
    prod = server.client(server.extra["production_key"]).get("/v1/headless/setup/status").json()
    assert prod["keyMode"] == "production" and prod["demoCourseId"] is None


def test_production_key_cannot_reach_test_objects(api: tuple[Server, Install]) -> None:
    """Object-level authorisation: ids guessed across environments and workspaces are not found."""
    server, install = api
    other_ws = int(cli("workspace", "create", "--name", "Tenant B", data_dir=install.data_dir).stdout)
    for key in (server.extra["production_key"], create_key(install.data_dir, other_ws, "production")):
        c = server.client(key)
        for method, path in [("GET", "/courses/1"), ("GET", "/course/content/1"), ("POST", "/course/1/duplicate"),
                             ("POST", "/course/1/publish"), ("DELETE", "/course/1"), ("GET", "/client/acme"),
                             ("GET", "/user/ann"), ("PUT", "/user/ann"), ("GET", "/tracking/1"),
                             ("GET", "/user/trackings?identifier=ann"), ("DELETE", "/user/ann")]:
            response = c.request(method, "/v1/headless" + path, json={} if method == "PUT" else None)
            _error(response, 404, "NOT_FOUND")
        assert c.get("/v1/headless/trackings", params={"id": 1}).json() == []
    assert server.client(install.test_key).get("/v1/headless/user/ann").status_code == 200


def test_entitlements_gate_authoring_and_scorm(api: tuple[Server, Install]) -> None:
    server, install = api
    ws = int(cli("workspace", "create", "--name", "Core plan", data_dir=install.data_dir).stdout)
    key = create_key(install.data_dir, ws, "test")
    for name in ("api_authoring", "scorm"):
        cli("workspace", "entitlement", "--workspace", str(ws), name, "off", data_dir=install.data_dir)
    c = server.client(key)
    _error(c.post("/v1/headless/course/1/publish"), 403, "FORBIDDEN")
    _error(c.post("/v1/headless/course/1/revert"), 403, "FORBIDDEN")
    _error(c.get("/v1/headless/course/scorm/1"), 403, "FORBIDDEN")
    assert c.get("/v1/headless/courses/1").status_code == 200


def test_user_and_client_deletion(api: tuple[Server, Install]) -> None:
    server, install = api
    c = server.client(install.test_key)
    copy = c.post("/v1/headless/course/1/duplicate", json={"identifier": "bob", "clientIdentifier": "acme"}).json()
    assert c.delete("/v1/headless/user/bob", params={"action": "reallocate", "reallocateTo": "ann"}).json() == {"message": "Success"}
    assert c.get(f"/v1/headless/courses/{copy['id']}").json()["identifier"] == "ann"
    assert c.get("/v1/headless/trackings", params={"id": 1, "identifier": "bob"}).json() == []
    _error(c.get("/v1/headless/user/bob"), 404, "NOT_FOUND")
    assert c.delete("/v1/headless/client/globex").json()["message"].startswith("All related objects")
    _error(c.get("/v1/headless/client/globex"), 404, "NOT_FOUND")
    _error(c.get("/v1/headless/user/cat"), 404, "NOT_FOUND")
    assert all(x["clientIdentifier"] != "globex" for x in c.get("/v1/headless/courses").json())


def _production_learners(install: Install) -> None:
    """Learners of the production environment, through the real storage layer: two identified
    (one of them tracked twice), one marked testMode, two anonymous, one from an earlier month."""
    runtime = open_runtime(config.load(install.data_dir))
    try:
        def job(w):  # type: ignore[no-untyped-def]
            course = courses.create(w, title="Forklift basics", content={"screens": [
                {"id": 1, "type": "text", "title": "Forklifts", "content": {"html": "<p>Look up.</p>"}}]})
            for ident, client in (("pia", "initech"), ("quinn", "initech"), ("rex", "umbrella"),
                                  ("sam", "initech")):
                ensure_identity(w, ident, client, name=ident.title())
            for ident, client in (("pia", "initech"), ("pia", "initech"), ("quinn", "initech"),
                                  ("rex", "umbrella"), ("sam", "initech"), ("anonymous:a1", "initech"),
                                  ("anonymous:b2", "umbrella")):
                record_progress(w, course, ident, client_identifier=client, progress_percent=30, seconds=10)
            w.execute("UPDATE users SET test_mode = 1 WHERE identifier = 'quinn'")
            w.execute("UPDATE trackings SET commenced = '2000-01-15T09:00:00.000Z' WHERE identifier = 'sam'")

        runtime.environment(install.workspace_id, "production").write(job)
    finally:
        runtime.close()


def test_production_usage_counts_real_learners(api: tuple[Server, Install]) -> None:
    """The counting SQL itself (the test environment answers 0 before it runs): distinct learners of
    this month, identified and anonymous apart, testMode users left out, per client."""
    server, install = api
    _production_learners(install)
    production = server.client(server.extra["production_key"])

    def usage(route: str) -> dict[str, int]:
        answer = production.get(route)
        assert answer.status_code == 200, answer.text
        return {row["metric"]: row["currentUsage"] for row in answer.json()}

    everyone = {"identified_recipients": 2, "anonymous_recipients": 2, "narration_tokens": 0, "image_generations": 0}
    assert usage("/v1/headless/usage/allowances") == everyone
    assert usage("/v1/headless/usage/client/initech") == {**everyone, "identified_recipients": 1,
                                                          "anonymous_recipients": 1}
    assert usage("/v1/headless/usage/client/umbrella") == {**everyone, "identified_recipients": 1,
                                                           "anonymous_recipients": 1}
    # another period: January 2000 holds sam alone
    rows = production.get("/v1/headless/usage/clients",
                          params={"start": "2000-01-01", "end": "2000-02-01", "length": 100}).json()["data"]
    counted = {(r["clientIdentifier"], r["metric"]): r["currentUsage"] for r in rows if r["currentUsage"]}
    assert counted == {("initech", "identified_recipients"): 1}, rows
    # the same learners in the test environment would never count: its own allowances stay at 0
    test_usage = server.client(install.test_key).get("/v1/headless/usage/allowances").json()
    assert all(row["currentUsage"] == 0 for row in test_usage)
