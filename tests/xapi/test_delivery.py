"""xAPI statements from the player's tracking to real LRS receivers (Basic auth, loopback).

One appliance server and one receiver for the module. Three endpoints in the test environment:
`ok` (answers 204), `bad` (answers 400: recorded, not retried) and `down` (no listener until the
end: retried, nothing lost). Statements are checked by the npm `xapi-validation` package.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from appliance import config
from appliance.config import WebhookSettings
from appliance.runtime import open_runtime
from appliance.xapi import outbox
from tests.admin.console import Visitor, setup_link
from tests.helpers import Install, Server, cli, free_port, init_data_dir, start_server
from tests.xapi.lrs import Lrs, validate

USER, PASSWORD = "lrs-user", "lrs-password-7"
ENV = {
    "APPLIANCE_WEBHOOKS_ALLOW_HOSTS": "127.0.0.1",
    "APPLIANCE_WEBHOOKS_ALLOW_HTTP": "true",
    "APPLIANCE_WEBHOOKS_BACKOFF_BASE_SECONDS": "0.2",
    "APPLIANCE_WEBHOOKS_BACKOFF_MAX_SECONDS": "0.5",
    "APPLIANCE_WEBHOOKS_POLL_SECONDS": "0.1",
    "APPLIANCE_WEBHOOKS_TIMEOUT_SECONDS": "5",
}
ADL = "http://adlnet.gov/expapi/verbs/"


@pytest.fixture(scope="module")
def lrs() -> Iterator[Lrs]:
    receiver = Lrs(USER, PASSWORD).start()
    receiver.statuses["bad"] = 400
    receiver.bearer.add("oauth")
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def down_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def install(tmp_path_factory: pytest.TempPathFactory, lrs: Lrs, down_port: int) -> Install:
    inst = init_data_dir(tmp_path_factory.mktemp("xapi") / "data")
    add = cli("lrs", "add", "--workspace", str(inst.workspace_id), "--env", "test", "--url", f"{lrs.base}/ok",
              "--username", USER, data_dir=inst.data_dir, input_text=PASSWORD + "\n", env=ENV)
    assert add.stdout.strip().isdigit(), add.stderr
    # the other endpoints through the same service in-process (each CLI start costs seconds)
    settings = WebhookSettings(allow_hosts=["127.0.0.1"], allow_http=True)
    runtime = open_runtime(config.load(inst.data_dir))
    try:
        database = runtime.environment(inst.workspace_id, "test")
        for url, extra in ((f"{lrs.base}/bad", {}), (f"http://127.0.0.1:{down_port}/down", {}),
                           (f"{lrs.base}/oauth", {"auth": "oauth2", "token_url": f"{lrs.base}/token"})):
            database.write(lambda w, url=url, extra=extra: outbox.add_endpoint(
                w, settings, url=url, username=USER, secret=PASSWORD, **{"auth": "basic", **extra}))
    finally:
        runtime.close()
    return inst


@pytest.fixture(scope="module")
def server(install: Install) -> Iterator[Server]:
    srv = start_server(install.data_dir, env=ENV)
    yield srv
    srv.stop()


def _lrs_cli(install: Install, *args: str) -> Any:
    out = cli("lrs", *args, "--workspace", str(install.workspace_id), "--env", "test", "--json",
              data_dir=install.data_dir, env=ENV)
    return json.loads(out.stdout)


def _session(api: httpx.Client, identifier: str) -> dict[str, str]:
    url = api.post("/v1/headless/embed/course", json={"action": "view", "courseId": 1, "identifier": identifier})
    assert url.status_code == 200, url.text
    view = api.post("/embed/api/session", json={"token": url.text.rsplit("/", 1)[1]})
    assert view.status_code == 200, view.text
    return {"Authorization": f"Bearer {view.json()['session']}"}


def _play(api: httpx.Client, identifier: str, answers: dict[str, Any]) -> None:
    bearer = _session(api, identifier)
    for body in (
        {"event": "start"},
        {"event": "attempt", "screenId": 1, "seconds": 1},  # leaving a text screen: no statement
        {"event": "progress", "progress": 50, "seconds": 3},
        {"event": "attempt", "screenId": 4, "answers": answers, "seconds": 2},
        {"event": "complete", "seconds": 1},
    ):
        answer = api.post("/embed/api/track", json=body, headers=bearer)
        assert answer.status_code == 200, answer.text


def test_the_players_events_reach_the_lrs_as_valid_statements(server: Server, install: Install, lrs: Lrs) -> None:
    with server.client(install.test_key) as api:
        _play(api, "learner-x", {"1": [1]})
        lrs.wait(lambda: len(lrs.at("ok")) >= 5 and len(lrs.at("bad")) >= 5 and len(lrs.at("oauth")) >= 5)
        got = {r.body["verb"]["id"].removeprefix(ADL): r for r in lrs.at("ok")}
        assert set(got) == {"launched", "progressed", "answered", "completed", "passed"}
        assert validate([r.body for r in lrs.at("ok")]) == [[]] * 5
        for received in lrs.at("ok"):
            assert received.status == 204 and received.statement_id == received.body["id"]
            assert received.body["actor"]["account"]["name"] == "learner-x"
        assert got["passed"].body["result"]["score"]["scaled"] == 1.0 and got["passed"].body["result"]["success"]
        assert got["completed"].body["result"]["completion"] is True
        assert got["answered"].body["result"]["response"] == '{"1":[1]}'
        registration = {r.body["context"]["registration"] for r in lrs.at("ok")}
        assert len(registration) == 1  # one tracking, one registration

        # the same completion reported again is the same statement: nothing new is queued
        api.post("/embed/api/track", json={"event": "complete"}, headers=_session(api, "learner-x"))
    time.sleep(0.5)  # the worker polls every 0.1 s: a duplicate would have been sent by now
    assert len(lrs.at("ok")) == 5

    # the LRS's 400s are recorded and not retried
    assert len(lrs.at("bad")) == 5
    endpoints = {e["url"].rsplit("/", 1)[1]: e for e in _lrs_cli(install, "list")}
    assert (endpoints["bad"]["failed"], endpoints["bad"]["pending"]) == (5, 0)
    log = _lrs_cli(install, "log", str(endpoints["bad"]["id"]))
    assert {(row["status"], row["attempts"], row["last_error"]) for row in log} == {("failed", 1, "HTTP 400")}
    assert (endpoints["ok"]["delivered"], endpoints["ok"]["pending"]) == (5, 0)
    # OAuth2 client credentials: one token for every statement, sent as a bearer token
    assert (endpoints["oauth"]["delivered"], lrs.tokens_issued) == (5, 1)
    assert {r.status for r in lrs.at("oauth")} == {204}


def test_an_lrs_that_is_down_loses_nothing_and_an_erased_learner_is_never_sent(
    server: Server, install: Install, lrs: Lrs, down_port: int
) -> None:
    with server.client(install.test_key) as api:
        _play(api, "learner-gone", {"1": [2]})  # failed the quiz
        lrs.wait(lambda: any(r.body["actor"]["account"]["name"] == "learner-gone" for r in lrs.at("ok")))
        down = next(e for e in _lrs_cli(install, "list") if e["url"].endswith("/down"))
        deadline = time.monotonic() + 20
        while not all(row["attempts"] >= 2 for row in _lrs_cli(install, "log", str(down["id"]))):
            assert time.monotonic() < deadline, "the down LRS was not retried"
            time.sleep(0.2)
        log = _lrs_cli(install, "log", str(down["id"]))
        assert {row["status"] for row in log} == {"pending"} and len(log) == 10  # learner-x's 5 and learner-gone's
        assert all("connection failed" in row["last_error"] for row in log)
        erased = api.request("DELETE", "/v1/headless/user/learner-gone")
        assert erased.status_code == 200, erased.text
    late = Lrs(USER, PASSWORD, port=down_port).start()
    try:
        late.wait(lambda: len(late.at("down")) >= 5)
        time.sleep(0.5)
        assert {r.body["actor"]["account"]["name"] for r in late.at("down")} == {"learner-x"}
        assert len(late.at("down")) == 5 and validate([r.body for r in late.at("down")]) == [[]] * 5
        assert {r.statement_id for r in late.at("down")} == {r.statement_id for r in lrs.at("ok")
                                                              if r.body["actor"]["account"]["name"] == "learner-x"}
    finally:
        late.stop()
    verbs = {r.body["verb"]["id"] for r in lrs.at("ok") if r.body["actor"]["account"]["name"] == "learner-gone"}
    assert ADL + "failed" in verbs


def test_a_statement_over_the_size_limit_is_refused_and_recorded(server: Server, install: Install, lrs: Lrs) -> None:
    answers: dict[str, Any] = {"1": [1]} | {f"pad{i}": ["x" * 150] * 10 for i in range(50)}  # ~80 kB
    with server.client(install.test_key) as api:
        bearer = _session(api, "learner-big")
        assert api.post("/embed/api/track", json={"event": "attempt", "screenId": 4, "answers": answers},
                        headers=bearer).status_code == 200
    ok = next(e for e in _lrs_cli(install, "list") if e["url"].endswith("/ok"))
    refused = [row for row in _lrs_cli(install, "log", str(ok["id"])) if row["status"] == "refused"]
    assert len(refused) == 1 and refused[0]["verb"] == "answered" and refused[0]["attempts"] == 0
    assert "over the 65536-byte limit" in refused[0]["last_error"]


def test_an_lrs_url_outside_the_allowlist_is_refused(install: Install) -> None:
    refused = cli("lrs", "add", "--workspace", str(install.workspace_id), "--env", "test", "--url",
                  "http://10.20.30.40/xapi", "--username", USER, data_dir=install.data_dir,
                  input_text=PASSWORD + "\n", env=ENV, check=False)
    assert refused.returncode == 2
    assert "LRS URL refused: 10.20.30.40 is not in webhooks.allow_hosts" in refused.stderr
    assert PASSWORD not in refused.stderr + refused.stdout


def test_the_console_shows_the_delivery_log_and_removes_an_endpoint(server: Server, install: Install) -> None:
    admin = Visitor(server)
    try:
        assert admin.set_up(setup_link(server)).status_code == 303
        listed = admin.get("/admin/lrs")
        assert listed.status_code == 200 and "/ok</code>" in listed.text and "<td>delivered</td>" in listed.text
        assert "<td>HTTP 400</td>" in listed.text and PASSWORD not in listed.text
        bad = re.search(r"LRS (\d+)</h2><p><code>[^<]*/bad</code>", listed.text)
        assert bad, listed.text
        fields = {"workspace": str(install.workspace_id), "env": "test", "id": bad.group(1)}
        assert admin.form("/admin/lrs", "/admin/lrs/remove", fields).status_code == 303
        assert "/bad</code>" not in admin.get("/admin/lrs").text and "/ok</code>" in admin.get("/admin/lrs").text
        assert admin.form("/admin/lrs", "/admin/lrs/remove", fields).status_code == 404
        assert admin.http.post("/admin/lrs/remove", data=fields).status_code == 403  # no CSRF token
    finally:
        admin.close()


def test_lrs_test_sends_one_sample_statement_now(install: Install, lrs: Lrs) -> None:
    before = len(lrs.at("ok"))
    sent = cli("lrs", "test", "1", "--workspace", str(install.workspace_id), "--env", "test",
               data_dir=install.data_dir, env=ENV, check=False)
    assert sent.returncode == 0 and sent.stdout.startswith("OK: HTTP 204"), sent.stdout + sent.stderr
    sample = lrs.at("ok")[before:]
    assert len(sample) == 1 and sample[0].body["verb"]["id"] == ADL + "experienced"
    assert validate([sample[0].body]) == [[]]
