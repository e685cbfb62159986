"""Real events: creating a course through the API delivers a signed `course.created`."""

from __future__ import annotations

from tests.helpers import Install, Server
from tests.webhooks.receiver import Receiver


def test_duplicate_course_delivers_course_created(hook_server: Server, hook_install: Install, receiver: Receiver) -> None:
    c = hook_server.client(hook_install.test_key)
    endpoint = c.post("/v1/headless/webhooks", json={"url": f"{receiver.base}/created", "events": ["course.created"]})
    assert endpoint.status_code == 200, endpoint.text
    receiver.secrets["/created"] = endpoint.json()["secret"]
    copy = c.post("/v1/headless/course/1/duplicate", json={"identifier": "author-1", "clientIdentifier": "tenant-9"})
    assert copy.status_code == 200
    receiver.wait(lambda: bool(receiver.at("/created")))
    delivery = receiver.at("/created")[0]
    assert delivery.verified and delivery.status == 200
    body = delivery.json()
    assert body["type"] == "course.created" and body["workspaceId"] == hook_install.workspace_id
    assert body["data"]["course"] == {"id": copy.json()["id"], "title": copy.json()["title"], "key": copy.json()["key"],
                                      "clientIdentifier": "tenant-9"}
    assert delivery.headers["x-coassemble-event"] == "course.created"
    assert body["id"] == delivery.delivery
