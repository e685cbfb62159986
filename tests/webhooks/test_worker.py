"""The delivery worker in-process: the allowlist is checked again at delivery time, TLS is verified,
and stopping lets an in-flight attempt finish and record its outcome."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.runtime import Runtime, initialise
from appliance.storage.database import Database
from appliance.webhooks import emit, outbox
from appliance.webhooks.worker import DeliveryWorker
from tests.webhooks.receiver import Receiver


@pytest.fixture()
def runtime(tmp_path: Path, receiver_tls: tuple[Path, Path]) -> Iterator[Runtime]:
    rt, _ = initialise(tmp_path / "data")
    rt.create_workspace("Hooks")
    hooks = rt.settings.webhooks
    hooks.allow_hosts = ["127.0.0.1"]
    hooks.ca_file = str(receiver_tls[0])
    hooks.poll_seconds = 0.05
    hooks.backoff_base_seconds = 60  # one attempt per test
    hooks.max_attempts = 5
    hooks.timeout_seconds = 5
    yield rt
    rt.close()


def queue(db: Database, url: str, secret: str = "whsec_worker") -> str:
    def job(w: Any) -> str:
        outbox.insert_endpoint(w, url, ["course.created"], True, secret)
        [delivery] = emit(w, "course.created", {"course": {"id": 1}})
        return delivery

    return db.write(job)


def first_attempt(db: Database, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cursor = db.read().execute(
            "SELECT o.status, a.status_code, a.error FROM webhook_attempts a"
            " JOIN webhook_outbox o ON o.id = a.outbox_id ORDER BY a.id LIMIT 1"
        )
        row = cursor.fetchone()
        if row is not None:
            return {"status": row[0], "status_code": row[1], "error": row[2]}
        time.sleep(0.05)
    raise AssertionError("no attempt was made")


def run_worker(runtime: Runtime) -> DeliveryWorker:
    worker = DeliveryWorker(runtime)
    worker.start()
    return worker


def test_a_destination_no_longer_allowed_is_not_contacted(runtime: Runtime, receiver: Receiver) -> None:
    db = runtime.environment(1, "test")
    queue(db, f"{receiver.base}/revoked")  # registered while 127.0.0.1 was allowed
    runtime.settings.webhooks.allow_hosts = ["10.0.0.0/8"]  # the operator narrowed the list
    worker = run_worker(runtime)
    try:
        attempt = first_attempt(db)
    finally:
        worker.stop()
    assert attempt["status_code"] is None and attempt["status"] == "pending"
    assert "destination not allowed" in attempt["error"] and "127.0.0.1" in attempt["error"]
    assert receiver.at("/revoked") == []


def test_dns_is_checked_on_every_connection(
    runtime: Runtime, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name allowed through its addresses that later resolves elsewhere (DNS rebinding)."""
    db = runtime.environment(1, "test")
    runtime.settings.webhooks.allow_hosts = ["127.0.0.0/8", "::1/128"]
    queue(db, f"https://localhost:{receiver.port}/rebound")
    real = socket.getaddrinfo

    def rebound(host: str, *args: Any, **kwargs: Any) -> Any:
        if host == "localhost":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", args[0]))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebound)
    worker = run_worker(runtime)
    try:
        attempt = first_attempt(db)
    finally:
        worker.stop()
    assert "resolves to 169.254.169.254" in attempt["error"], attempt
    assert receiver.at("/rebound") == []


def test_the_receiver_certificate_is_verified(runtime: Runtime, receiver: Receiver) -> None:
    db = runtime.environment(1, "test")
    runtime.settings.webhooks.ca_file = ""  # only the system store: the test CA is unknown to it
    queue(db, f"{receiver.base}/untrusted")
    worker = run_worker(runtime)
    try:
        attempt = first_attempt(db)
    finally:
        worker.stop()
    assert "CERTIFICATE_VERIFY_FAILED" in attempt["error"], attempt
    assert receiver.at("/untrusted") == []


def test_stop_lets_an_in_flight_attempt_finish(runtime: Runtime, receiver: Receiver) -> None:
    db = runtime.environment(1, "test")
    receiver.secrets["/slow"] = "whsec_worker"
    receiver.delays["/slow"] = 1.0
    delivery = queue(db, f"{receiver.base}/slow")
    worker = run_worker(runtime)
    time.sleep(0.5)  # the POST is now waiting for the slow receiver
    started = time.monotonic()
    worker.stop()
    assert time.monotonic() - started < 5
    assert not worker._thread.is_alive()
    attempt = first_attempt(db, timeout=0.1)  # already recorded when stop() returned
    assert attempt == {"status": "delivered", "status_code": 200, "error": None}
    assert receiver.accepted[delivery] == 1
