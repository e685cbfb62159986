"""Webhook endpoints and deliveries end to end: a real server, a real HTTPS receiver (§2.8, §3.6)."""

from __future__ import annotations

import itertools
import re
import time
import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.helpers import Install, Server, cli, create_key, free_port
from tests.webhooks.receiver import Receiver

PREFIXES = ("/v1/headless", "/api/v1/headless")
EVENTS = ["course.created", "course.commenced", "course.completed"]


def register(client: httpx.Client, url: str, events: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    response = client.post("/v1/headless/webhooks", json={"url": url, "events": events or EVENTS, **extra})
    assert response.status_code == 200, response.text
    return dict(response.json())


def deliveries(client: httpx.Client, endpoint_id: int) -> list[dict[str, Any]]:
    response = client.get(f"/v1/headless/webhooks/{endpoint_id}/deliveries")
    assert response.status_code == 200, response.text
    return list(response.json())


def wait_status(client: httpx.Client, endpoint_id: int, delivery_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    seen: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        seen = [d for d in deliveries(client, endpoint_id) if d["id"] == delivery_id]
        if seen and seen[0]["status"] == status:
            return seen[0]
        time.sleep(0.1)
    raise AssertionError(f"delivery never became {status}: {seen}")


def test_test_delivery_arrives_signed_and_verified(
    hook_server: Server, hook_install: Install, receiver: Receiver
) -> None:
    client = hook_server.client(hook_install.test_key)
    endpoint = register(client, f"{receiver.base}/signed", ["course.completed"])
    receiver.secrets["/signed"] = endpoint["secret"]
    response = client.post(f"/v1/headless/webhooks/{endpoint['id']}/test")
    assert response.status_code == 200, response.text
    queued = response.json()
    assert queued["event"] == "course.completed" and queued["test"] is True
    receiver.wait(lambda: bool(receiver.at("/signed")))
    [got] = receiver.at("/signed")
    assert got.verified and got.status == 200
    assert got.headers["content-type"] == "application/json"
    assert got.headers["x-coassemble-event"] == "course.completed"
    assert got.headers["x-coassemble-delivery"] == queued["id"]
    assert uuid.UUID(got.delivery).version == 4
    assert abs(int(got.headers["x-coassemble-timestamp"]) - time.time()) < 60
    assert re.fullmatch(r"sha256=[0-9a-f]{64}", got.headers["x-coassemble-signature"])
    assert got.headers["user-agent"].startswith("Coassemble-Appliance-Webhooks/")
    body = got.json()
    assert set(body) == {"id", "type", "occurredAt", "workspaceId", "data", "test"}
    assert body["id"] == queued["id"] and body["type"] == "course.completed" and body["test"] is True
    assert body["workspaceId"] == hook_install.workspace_id
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["occurredAt"])
    course, tracking = body["data"]["course"], body["data"]["tracking"]
    assert course["title"] == "New starter induction" and {"id", "key", "clientIdentifier"} <= set(course)
    assert {"id", "identifier", "email", "commenced", "completed", "totalTime"} <= set(tracking)
    assert datetime.fromisoformat(tracking["completed"].replace("Z", "+00:00"))
    # a body tampered with in transit would not verify: the receiver's check is a real one
    assert not receiver_verifies(endpoint["secret"], got.headers, got.body + b" ")
    delivered = wait_status(client, endpoint["id"], queued["id"], "delivered")
    assert delivered["attempts"] == 1 and [a["statusCode"] for a in delivered["log"]] == [200]
    assert receiver.accepted[queued["id"]] == 1
    # a chosen event, under the other prefix
    response = client.post(
        f"/api/v1/headless/webhooks/{endpoint['id']}/test", json={"event": "course.created"}
    )
    assert response.status_code == 200, response.text
    receiver.wait(lambda: len(receiver.at("/signed")) == 2)
    created = receiver.at("/signed")[1]
    assert created.verified and created.json()["type"] == "course.created"
    assert set(created.json()["data"]) == {"course"}


def receiver_verifies(secret: str, headers: dict[str, str], body: bytes) -> bool:
    from tests.webhooks.receiver import verify

    return verify(secret, headers, body)


def test_receiver_errors_are_retried_with_backoff(
    hook_server: Server, hook_install: Install, receiver: Receiver
) -> None:
    client = hook_server.client(hook_install.test_key)
    endpoint = register(client, f"{receiver.base}/flaky")
    receiver.secrets["/flaky"] = endpoint["secret"]
    receiver.scripts["/flaky"] = [503, 500]
    queued = client.post(f"/v1/headless/webhooks/{endpoint['id']}/test").json()
    done = wait_status(client, endpoint["id"], queued["id"], "delivered")
    assert done["attempts"] == 3
    assert [a["statusCode"] for a in done["log"]] == [503, 500, 200]
    assert done["log"][0]["error"] is None and done["lastError"] is None
    got = receiver.at("/flaky")
    assert [r.status for r in got] == [503, 500, 200]
    assert {r.delivery for r in got} == {queued["id"]}  # the dedupe id is stable across retries
    assert len({r.body for r in got}) == 1  # the very same body bytes, each attempt signed afresh
    assert all(r.verified for r in got)
    # backoff: attempt n+1 waits at least 0.8 * 0.2 s * 2^(n-1) after attempt n was logged
    times = [datetime.fromisoformat(a["time"].replace("Z", "+00:00")) for a in done["log"]]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert gaps[0] >= 0.16 and gaps[1] >= 0.32, gaps


def test_a_receiver_that_is_down_gets_retries_then_fails(hook_server: Server, hook_install: Install) -> None:
    client = hook_server.client(hook_install.test_key)
    endpoint = register(client, f"https://127.0.0.1:{free_port()}/down")
    queued = client.post(f"/v1/headless/webhooks/{endpoint['id']}/test").json()
    failed = wait_status(client, endpoint["id"], queued["id"], "failed")
    assert failed["attempts"] == 3 and failed["nextAttempt"] is None
    assert [a["statusCode"] for a in failed["log"]] == [None, None, None]
    assert all("connection failed" in a["error"] for a in failed["log"]), failed["log"]
    assert "connection failed" in failed["lastError"]
    time.sleep(1)  # and it stays failed: no fourth attempt
    assert deliveries(client, endpoint["id"])[0]["attempts"] == 3


def test_redirects_are_not_followed(hook_server: Server, hook_install: Install, receiver: Receiver) -> None:
    client = hook_server.client(hook_install.test_key)
    endpoint = register(client, f"{receiver.base}/moved")
    receiver.secrets["/moved"] = receiver.secrets["/elsewhere"] = endpoint["secret"]
    receiver.redirects["/moved"] = f"{receiver.base}/elsewhere"
    queued = client.post(f"/v1/headless/webhooks/{endpoint['id']}/test").json()
    failed = wait_status(client, endpoint["id"], queued["id"], "failed")
    assert [a["statusCode"] for a in failed["log"]] == [302, 302, 302]
    assert "redirects are not followed" in failed["lastError"]
    assert receiver.at("/elsewhere") == []


@pytest.mark.parametrize(
    ("url", "events", "message"),
    [
        ("http://127.0.0.1:9/hook", EVENTS, "https"),
        ("ftp://127.0.0.1/hook", EVENTS, "https"),
        ("https://10.1.2.3/hook", EVENTS, "not in webhooks.allow_hosts"),
        ("https://[::1]:9/hook", EVENTS, "not in webhooks.allow_hosts"),
        ("https://hooks.invalid/hook", EVENTS, "does not resolve"),
        ("https://user:pw@127.0.0.1/hook", EVENTS, "credentials"),
        ("not a url", EVENTS, "https"),
        ("https://127.0.0.1/hook", ["course.deleted"], "course.deleted"),
        ("https://127.0.0.1/hook", [], "Validation failed"),
    ],
)
def test_bad_endpoints_are_422(
    hook_server: Server, hook_install: Install, url: str, events: list[str], message: str
) -> None:
    client = hook_server.client(hook_install.test_key)
    for prefix in PREFIXES:
        response = client.post(f"{prefix}/webhooks", json={"url": url, "events": events})
        assert response.status_code == 422, response.text
        body = response.json()
        assert set(body) == {"statusCode", "code", "error", "message"}
        assert body["statusCode"] == 422 and body["code"] == "UNPROCESSABLE_ENTITY"
        assert message in body["message"]
    listed = client.get("/v1/headless/webhooks").json()["endpoints"]
    assert url not in [e["url"] for e in listed]


def test_listing_shape_and_the_secret_is_shown_once(
    hook_server: Server, hook_install: Install, receiver: Receiver
) -> None:
    client = hook_server.client(hook_install.test_key)
    created = register(
        client, f"{receiver.base}/shape", ["course.completed", "course.created"], enabled=False
    )
    assert set(created) == {"id", "url", "events", "enabled", "created", "updated", "secret"}
    assert re.fullmatch(r"whsec_[0-9a-f]{64}", created["secret"])
    assert created["events"] == ["course.created", "course.completed"] and created["enabled"] is False
    secret = created.pop("secret")
    for prefix in PREFIXES:
        response = client.get(f"{prefix}/webhooks")
        assert response.status_code == 200
        listing = response.json()
        assert listing["events"] == EVENTS
        [mine] = [e for e in listing["endpoints"] if e["id"] == created["id"]]
        assert mine == created
        assert secret not in response.text and "secret" not in response.text
    client.post(f"/v1/headless/webhooks/{created['id']}/test")  # a disabled endpoint can still be tested
    log = client.get(f"/v1/headless/webhooks/{created['id']}/deliveries")
    assert log.status_code == 200 and secret not in log.text
    second = register(client, f"{receiver.base}/shape")
    assert second["secret"] != secret  # each endpoint has its own secret
    response = client.delete(f"/v1/headless/webhooks/{created['id']}")
    assert response.status_code == 200 and response.json() == {"id": created["id"], "deleted": True}
    assert created["id"] not in [e["id"] for e in client.get("/v1/headless/webhooks").json()["endpoints"]]
    assert client.delete(f"/v1/headless/webhooks/{created['id']}").status_code == 404
    assert client.get(f"/v1/headless/webhooks/{created['id']}/deliveries").status_code == 404


def test_other_workspaces_and_environments_cannot_touch_an_endpoint(
    hook_server: Server, hook_install: Install, receiver: Receiver
) -> None:
    owner = hook_server.client(hook_install.test_key)
    endpoint = register(owner, f"{receiver.base}/private")
    prod_key = create_key(hook_install.data_dir, hook_install.workspace_id, "production")
    other_ws = int(
        cli("workspace", "create", "--name", "Other", data_dir=hook_install.data_dir).stdout.strip()
    )
    other_key = create_key(hook_install.data_dir, other_ws, "test")
    for key in (prod_key, other_key):
        intruder = hook_server.client(key)
        listing = intruder.get("/v1/headless/webhooks")
        assert listing.status_code == 200
        assert endpoint["url"] not in listing.text and listing.json()["endpoints"] == []
        for prefix in PREFIXES:
            base = f"{prefix}/webhooks/{endpoint['id']}"
            assert intruder.get(f"{base}/deliveries").status_code == 404
            assert intruder.post(f"{base}/test").status_code == 404
            response = intruder.delete(base)
            assert response.status_code == 404
            assert response.json()["message"] == "Webhook endpoint not found"
    still = [e["id"] for e in owner.get("/v1/headless/webhooks").json()["endpoints"]]
    assert endpoint["id"] in still
    assert len(receiver.at("/private")) == 0
    # the workspace made while the server runs has its own endpoints, delivered promptly
    other = hook_server.client(other_key)
    theirs = register(other, f"{receiver.base}/other-workspace", ["course.created"])
    receiver.secrets["/other-workspace"] = theirs["secret"]
    queued = other.post(f"/v1/headless/webhooks/{theirs['id']}/test").json()
    receiver.wait(lambda: bool(receiver.at("/other-workspace")), timeout=10)
    [got] = receiver.at("/other-workspace")
    assert got.verified and got.json()["workspaceId"] == other_ws and got.delivery == queued["id"]
    assert [e["url"] for e in other.get("/v1/headless/webhooks").json()["endpoints"]] == [theirs["url"]]
