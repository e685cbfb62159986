from __future__ import annotations

from tests.helpers import Install, Server


def test_health_tells_anonymous_callers_only_up_or_down(server: Server, install: Install) -> None:
    anonymous = server.client().get("/health")
    assert anonymous.status_code == 200 and anonymous.json() == {"status": "ok"}
    detailed = server.client().get("/health", headers={"Authorization": f"Bearer {install.metrics_token}"})
    assert detailed.json()["checks"] == {"control": "ok", "audit": "ok", "ai": "ready", "disk": "ok"}


def test_metrics_need_the_token(server: Server, install: Install) -> None:
    assert server.client().get("/metrics").status_code == 401
    assert server.client().get("/metrics", headers={"Authorization": "Bearer mt_wrong"}).status_code == 401
    server.client(install.test_key).get("/v1/headless/courses")
    body = server.client().get("/metrics", headers={"Authorization": f"Bearer {install.metrics_token}"}).text
    assert 'appliance_requests_total{method="GET",status="200"}' in body
    assert "appliance_request_duration_seconds_bucket" in body


def test_openapi_document_lists_the_headless_routes(server: Server) -> None:
    doc = server.client().get("/api/docs/json").json()
    assert doc["openapi"].startswith("3.")
    assert "/v1/headless/courses" in doc["paths"]
    assert "/v1/headless/themes/{theme_id}" in doc["paths"]
    ui = server.client().get("/api/docs/")
    assert ui.status_code == 200 and "swagger" in ui.text.lower()
    assert "unpkg" not in ui.text and "cdn" not in ui.text.lower()  # works offline
    assert server.client().get("/api/docs/static/swagger-ui-bundle.js").status_code == 200


def test_structured_logs_carry_the_request_id(server: Server) -> None:
    response = server.client().get("/health")
    request_id = response.headers["x-request-id"]
    import json
    import time

    # the access line is written when the response has ended, so it can land just after the client
    # has read the answer: look again for a moment
    deadline = time.monotonic() + 5
    while True:
        lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
        found = any(entry.get("request_id") == request_id and entry.get("path") == "/health" for entry in lines)
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert found
