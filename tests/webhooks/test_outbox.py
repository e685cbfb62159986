"""Unit tests: `emit` inside a writer transaction, the attempt bookkeeping, signing, the allowlist."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from appliance import config
from appliance.runtime import Runtime, initialise
from appliance.storage.database import Database
from appliance.webhooks import course_summary, emit, outbox, tracking_summary
from appliance.webhooks.allow import AllowList, NotAllowed, check_url
from appliance.webhooks.signer import sign, verify


@pytest.fixture()
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt, _ = initialise(tmp_path / "data")
    rt.create_workspace("Hooks")
    yield rt
    rt.close()


@pytest.fixture()
def env_db(runtime: Runtime) -> Database:
    return runtime.environment(1, "test")


def rows(db: Database, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    cursor = db.read().execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


def add_endpoint(db: Database, events: list[str], enabled: bool = True) -> int:
    return db.write(lambda w: outbox.insert_endpoint(w, "https://127.0.0.1/x", events, enabled, "whsec_test"))


def test_emit_writes_one_row_per_subscribed_enabled_endpoint(env_db: Database) -> None:
    subscribed = add_endpoint(env_db, ["course.completed", "course.created"])
    add_endpoint(env_db, ["course.completed"], enabled=False)
    add_endpoint(env_db, ["course.commenced"])
    also = add_endpoint(env_db, ["course.completed"])
    course = rows(env_db, "SELECT * FROM courses")[0]
    tracking = {
        "id": 8888,
        "identifier": "user_123",
        "email": "user@example.com",
        "commenced": "2026-02-22T10:01:00.000Z",
        "completed": "2026-02-22T10:15:30.000Z",
        "total_time": 870,
    }
    data = {"course": course_summary(course), "tracking": tracking_summary(tracking)}
    ids = env_db.write(lambda w: emit(w, "course.completed", data))
    assert len(ids) == 2
    queued = rows(env_db, "SELECT * FROM webhook_outbox ORDER BY id")
    assert [r["endpoint_id"] for r in queued] == [subscribed, also]
    assert [r["delivery_id"] for r in queued] == ids
    assert {r["status"] for r in queued} == {"pending"} and {r["attempts"] for r in queued} == {0}
    body = json.loads(queued[0]["body"])
    assert list(body) == ["id", "type", "occurredAt", "workspaceId", "data"]
    assert body["id"] == ids[0] and body["type"] == "course.completed"
    assert body["workspaceId"] == 1  # from the database's own identity
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["occurredAt"])
    assert body["data"] == {
        "course": {
            "id": course["id"],
            "title": "New starter induction",
            "key": course["key"],
            "clientIdentifier": None,
        },
        "tracking": {
            "id": 8888,
            "identifier": "user_123",
            "email": "user@example.com",
            "commenced": "2026-02-22T10:01:00.000Z",
            "completed": "2026-02-22T10:15:30.000Z",
            "totalTime": 870,
        },
    }
    assert json.loads(queued[1]["body"])["id"] == ids[1] != ids[0]  # one delivery id per endpoint
    assert env_db.write(lambda w: emit(w, "course.commenced", data, 77)) != []
    assert (
        json.loads(rows(env_db, "SELECT body FROM webhook_outbox ORDER BY id DESC")[0]["body"])["workspaceId"]
        == 77
    )


def test_emit_commits_and_rolls_back_with_the_change(env_db: Database) -> None:
    add_endpoint(env_db, ["course.created"])

    def failing_job(w: sqlite_utils.Database) -> None:
        w.execute("UPDATE courses SET title = 'Changed'")
        emit(w, "course.created", {"course": {"id": 1}})
        raise RuntimeError("the change fails after emitting")

    with pytest.raises(RuntimeError):
        env_db.write(failing_job)
    assert rows(env_db, "SELECT count(*) AS n FROM webhook_outbox")[0]["n"] == 0
    assert rows(env_db, "SELECT title FROM courses")[0]["title"] == "New starter induction"
    assert env_db.write(lambda w: emit(w, "course.created", {"course": {"id": 1}})) != []
    assert rows(env_db, "SELECT count(*) AS n FROM webhook_outbox")[0]["n"] == 1


def test_emit_rejects_unknown_events_and_is_quiet_without_subscribers(env_db: Database) -> None:
    with pytest.raises(ValueError, match="unknown webhook event"):
        env_db.write(lambda w: emit(w, "course.deleted", {}))
    assert env_db.write(lambda w: emit(w, "course.created", {})) == []


def test_attempts_reschedule_with_backoff_then_fail(env_db: Database) -> None:
    endpoint = add_endpoint(env_db, ["course.created"])
    [delivery] = env_db.write(lambda w: emit(w, "course.created", {}))
    outbox_id = rows(env_db, "SELECT id FROM webhook_outbox")[0]["id"]

    def attempt(code: int | None, error: str | None = None) -> str | None:
        return env_db.write(
            lambda w: outbox.record_attempt(
                w,
                outbox_id,
                status_code=code,
                error=error,
                duration_ms=1.0,
                max_attempts=3,
                backoff_base=100.0,
                backoff_max=150.0,
            )
        )

    before = time.time()
    assert attempt(503) == "pending"
    row = rows(env_db, "SELECT * FROM webhook_outbox")[0]
    due = _epoch(row["next_attempt"])
    assert before + 80 <= due <= time.time() + 120  # base 100 s, +-20 %
    assert row["last_error"] == "HTTP 503" and row["attempts"] == 1
    assert attempt(None, "connection failed: refused") == "pending"
    row = rows(env_db, "SELECT * FROM webhook_outbox")[0]
    assert before + 120 <= _epoch(row["next_attempt"]) <= time.time() + 180  # 200 s, capped at 150
    assert attempt(500) == "failed"
    row = rows(env_db, "SELECT * FROM webhook_outbox")[0]
    assert row["status"] == "failed" and row["attempts"] == 3 and row["delivered"] is None
    log = rows(env_db, "SELECT status_code, error FROM webhook_attempts ORDER BY id")
    assert log == [
        {"status_code": 503, "error": None},
        {"status_code": None, "error": "connection failed: refused"},
        {"status_code": 500, "error": None},
    ]
    assert delivery == row["delivery_id"]
    # a delivered row: and deleting the endpoint removes its deliveries and attempts
    [second] = env_db.write(lambda w: emit(w, "course.created", {}))
    second_id = rows(env_db, "SELECT id FROM webhook_outbox WHERE delivery_id = ?", [second])[0]["id"]
    outbox_id = second_id
    assert attempt(204) == "delivered"
    env_db.write(lambda w: w.execute("DELETE FROM webhook_endpoints WHERE id = ?", [endpoint]))
    assert rows(env_db, "SELECT count(*) AS n FROM webhook_attempts")[0]["n"] == 0
    assert attempt(200) is None  # an attempt that ends after its endpoint was deleted is dropped


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_retry_delays_grow_exponentially_with_jitter() -> None:
    for n, expected in [(1, 30), (2, 60), (3, 120), (8, 3600), (20, 3600)]:
        delays = [outbox.retry_delay(n, 30, 3600) for _ in range(200)]
        assert all(0.8 * expected <= d <= 1.2 * expected for d in delays)
        assert len({round(d, 6) for d in delays}) > 100  # jittered, not a fixed schedule


def test_signature_matches_an_independent_hmac() -> None:
    body = b'{"id":"x","type":"course.created"}'
    expected = hmac.new(b"whsec_abc", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign("whsec_abc", 1700000000, body) == "sha256=" + expected
    assert verify("whsec_abc", "1700000000", body, "sha256=" + expected, now=1700000100)
    assert not verify("whsec_abc", "1700000000", body, "sha256=" + expected, now=1700000301)
    assert not verify("whsec_abd", "1700000000", body, "sha256=" + expected, now=1700000000)
    assert not verify("whsec_abc", "1700000000", body + b" ", "sha256=" + expected, now=1700000000)


def test_allowlist_names_cidrs_and_resolution() -> None:
    allow = AllowList.parse(["hooks.internal", "*.corp.example", "10.0.0.0/8", "127.0.0.1", "fd00::/8"])
    assert allow.addresses("10.2.3.4", 443) == ["10.2.3.4"]
    assert allow.addresses("::ffff:10.2.3.4", 443) == ["10.2.3.4"]  # IPv4-mapped is the IPv4 address
    assert allow.addresses("[fd00::1]", 443) == ["fd00::1"]
    assert allow.addresses("127.0.0.1", 443) == ["127.0.0.1"]
    for host in ("11.0.0.1", "127.0.0.2", "::1", "169.254.169.254"):
        with pytest.raises(NotAllowed, match=r"not in webhooks\.allow_hosts"):
            allow.addresses(host, 443)
    assert allow.name_allowed("HOOKS.internal.") and allow.name_allowed("a.b.corp.example")
    assert not allow.name_allowed("corp.example") and not allow.name_allowed("evilhooks.internal")
    with pytest.raises(NotAllowed, match="does not resolve"):
        allow.addresses("nothing.invalid", 443)
    # a name that is not itself allowed passes only if every address it resolves to is allowed
    local = {str(i[4][0]) for i in socket.getaddrinfo("localhost", 443, type=socket.SOCK_STREAM)}
    assert set(AllowList.parse(["127.0.0.0/8", "::1/128"]).addresses("localhost", 443)) == local
    with pytest.raises(NotAllowed):
        AllowList.parse(["10.0.0.0/8"]).addresses("localhost", 443)
    with pytest.raises(NotAllowed, match="no webhook destinations are allowed"):
        AllowList.parse([]).addresses("127.0.0.1", 443)
    for bad in ("10.0.0.0/33", "bad host", "a..b", "http://x"):
        with pytest.raises(ValueError, match=r"webhooks\.allow_hosts"):
            AllowList.parse([bad])


def test_url_shape_rules() -> None:
    allow = AllowList.parse(["127.0.0.1"])
    assert check_url("https://127.0.0.1/x", allow, allow_http=False) == ("https", "127.0.0.1", 443)
    assert check_url("http://127.0.0.1:8/x", allow, allow_http=True) == ("http", "127.0.0.1", 8)
    for url, message in [
        ("http://127.0.0.1/x", "https"),
        ("https://u:p@127.0.0.1/x", "credentials"),
        ("https:///x", "no host"),
        ("https://127.0.0.1:99999/x", "not a valid URL"),
        ("https://127.0.0.1/x#frag", "fragment"),
    ]:
        with pytest.raises(NotAllowed, match=message):
            check_url(url, allow, allow_http=False)


def test_webhook_settings_from_file_and_environment(tmp_path: Path) -> None:
    assert config.load(tmp_path, environ={}).webhooks.allow_hosts == []
    (tmp_path / config.CONFIG_FILE).write_text(
        '[webhooks]\nallow_hosts = ["hooks.internal", "10.0.0.0/8"]\nallow_http = true\n'
    )
    settings = config.load(tmp_path, environ={})
    assert settings.webhooks.allow_hosts == ["hooks.internal", "10.0.0.0/8"]
    assert settings.webhooks.allow_http is True
    settings = config.load(tmp_path, environ={"APPLIANCE_WEBHOOKS_ALLOW_HOSTS": " a.internal, 10.1.0.0/16 ,"})
    assert settings.webhooks.allow_hosts == ["a.internal", "10.1.0.0/16"]
    for env, message in [
        ({"APPLIANCE_WEBHOOKS_ALLOW_HOSTS": "10.0.0.0/99"}, "allow_hosts"),
        ({"APPLIANCE_WEBHOOKS_CA_FILE": str(tmp_path / "missing.pem")}, "ca_file"),
        ({"APPLIANCE_WEBHOOKS_CA_FILE": str(tmp_path / config.CONFIG_FILE)}, "PEM"),
        ({"APPLIANCE_WEBHOOKS_MAX_ATTEMPTS": "0"}, "max_attempts"),
    ]:
        with pytest.raises(config.ConfigError, match=message):
            config.load(tmp_path, environ=env)
    (tmp_path / config.CONFIG_FILE).write_text(config.DEFAULT_TOML)
    assert config.load(tmp_path, environ={}).webhooks.max_attempts == 10
