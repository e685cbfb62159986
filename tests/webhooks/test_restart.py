"""Durability: a delivery pending when the appliance stops is sent after it starts again, once."""

from __future__ import annotations

import time
from pathlib import Path

from tests.helpers import init_data_dir, start_server
from tests.webhooks.conftest import hook_env
from tests.webhooks.receiver import Receiver
from tests.webhooks.test_api import deliveries, register, wait_status


def test_restart_between_attempts_loses_nothing_and_sends_once(
    tmp_path: Path, receiver: Receiver, receiver_tls: tuple[Path, Path]
) -> None:
    install = init_data_dir(tmp_path / "data")
    # a long first backoff, so the retry is due only after the appliance has been restarted
    env = hook_env(
        receiver_tls, APPLIANCE_WEBHOOKS_BACKOFF_BASE_SECONDS="4", APPLIANCE_WEBHOOKS_MAX_ATTEMPTS="5"
    )
    first = start_server(install.data_dir, env=env)
    try:
        client = first.client(install.test_key)
        endpoint = register(client, f"{receiver.base}/durable")
        receiver.secrets["/durable"] = endpoint["secret"]
        receiver.scripts["/durable"] = [503]
        queued = client.post(f"/v1/headless/webhooks/{endpoint['id']}/test").json()
        receiver.wait(lambda: len(receiver.at("/durable")) == 1)
        deadline = time.monotonic() + 10
        while deliveries(client, endpoint["id"])[0]["attempts"] != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        pending = deliveries(client, endpoint["id"])[0]
        assert pending["status"] == "pending" and pending["attempts"] == 1, pending
    finally:
        first.stop()
    assert first.process.returncode == 0, first.log()
    assert '"msg": "stopped"' in first.log()  # the worker and databases were shut down cleanly
    assert len(receiver.at("/durable")) == 1  # nothing more while the appliance was down

    second = start_server(install.data_dir, env=env)
    try:
        client = second.client(install.test_key)
        done = wait_status(client, endpoint["id"], queued["id"], "delivered")
        assert [a["statusCode"] for a in done["log"]] == [503, 200]
        time.sleep(1.5)  # give a wrong second send the chance to happen
        got = receiver.at("/durable")
        assert [r.status for r in got] == [503, 200]
        assert {r.delivery for r in got} == {queued["id"]}
        assert receiver.accepted[queued["id"]] == 1  # exactly once per delivery id
        assert all(r.verified for r in got)
    finally:
        second.stop()
