"""A learner's run in the player fires `course.commenced` and `course.completed`, signed, and what
they carry agrees with the tracking row the API returns."""

from __future__ import annotations

from pathlib import Path

from tests.embeds.conftest import Appliance
from tests.embeds.test_browser import _open
from tests.webhooks.receiver import Receiver


def test_webhooks_agree_with_the_tracking_row(page, host, appliance: Appliance, receiver_cert: tuple[Path, Path]) -> None:  # type: ignore[no-untyped-def]
    receiver = Receiver(*receiver_cert).start()
    try:
        with appliance.api() as api:
            endpoint = api.post("/v1/headless/webhooks", json={"url": f"{receiver.base}/hooks",
                                                               "events": ["course.commenced", "course.completed"]})
            assert endpoint.status_code == 200, endpoint.text
        receiver.secrets["/hooks"] = endpoint.json()["secret"]
        frame = _open(page, host, id=1, identifier="hooked-learner", clientIdentifier="acme")
        frame.get_by_role("button", name="Start").click()
        for title in ("Welcome aboard", "Your first day"):
            frame.get_by_role("heading", name=title).wait_for()
            frame.get_by_role("button", name="Next").click()
        frame.get_by_role("heading", name="Before Friday").wait_for()
        for box in frame.get_by_role("checkbox").all():
            box.check()
        frame.get_by_role("button", name="Next").click()
        frame.get_by_label("Your buddy").check()
        frame.get_by_role("button", name="Check answer").click()
        frame.get_by_role("button", name="Finish").click()
        frame.get_by_text("Well done!").wait_for()

        def mine() -> list:  # type: ignore[type-arg]
            return [r for r in receiver.at("/hooks")
                    if r.status == 200 and r.json()["data"]["tracking"]["identifier"] == "hooked-learner"]

        receiver.wait(lambda: len(mine()) == 2, timeout=30)
        deliveries = {r.json()["type"]: r for r in mine()}
        assert set(deliveries) == {"course.commenced", "course.completed"}
        assert all(r.verified for r in deliveries.values())
        with appliance.api() as api:
            [row] = api.get("/v1/headless/trackings", params={"id": 1, "identifier": "hooked-learner"}).json()
        completed = deliveries["course.completed"].json()
        assert completed["workspaceId"] == appliance.install.workspace_id
        assert completed["data"]["course"]["id"] == 1
        tracking = completed["data"]["tracking"]
        assert tracking["id"] == row["id"] and tracking["completed"] == row["completed"]
        assert tracking["commenced"] == row["commenced"]
        commenced = deliveries["course.commenced"].json()["data"]["tracking"]
        assert commenced["id"] == row["id"] and commenced["completed"] is None
    finally:
        receiver.stop()
