"""Logs must not defeat erasure (issue 11): a learner's or client's identifier never reaches the
access log, the audit log or setup/status in clear; `appliance log-id` gives the pseudonym they carry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import Install, Server, cli, init_data_dir, start_server

LEARNER = "erased-learner-7f3a"
CLIENT = "erased-client-9c1d"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Install]]:
    install = init_data_dir(tmp_path_factory.mktemp("pseudonyms") / "data")
    server = start_server(install.data_dir)
    yield server, install
    server.stop()


def test_identifiers_in_paths_are_pseudonymised_everywhere_logs_go(served: tuple[Server, Install]) -> None:
    server, install = served
    with server.client(install.test_key) as api:
        made = api.post("/v1/headless/embed/course",
                        json={"action": "view", "courseId": 1, "identifier": LEARNER, "clientIdentifier": CLIENT})
        assert made.status_code == 200, made.text
        assert api.get(f"/v1/headless/user/{LEARNER}").status_code == 200
        assert api.put(f"/api/v1/headless/user/{LEARNER}", json={"name": "Erased"}).status_code == 200
        assert api.get(f"/v1/headless/client/{CLIENT}").status_code == 200
        assert api.get(f"/v1/headless/usage/client/{CLIENT}").status_code == 200
        assert api.get(f"/v1/headless/user/{LEARNER}/no-such-route").status_code == 404
        assert api.get("/v1/headless/user/trackings", params={"identifier": LEARNER}).status_code == 200
        assert api.delete(f"/v1/headless/user/{LEARNER}", params={"action": "delete"}).status_code == 200
        assert api.delete(f"/v1/headless/client/{CLIENT}").status_code == 200
        assert api.get(f"/v1/headless/user/{LEARNER}").status_code == 404  # erased; the last failure
        status = api.get("/v1/headless/setup/status").json()
    learner_id = cli("log-id", LEARNER, data_dir=install.data_dir).stdout.strip()
    client_id = cli("log-id", CLIENT, data_dir=install.data_dir).stdout.strip()
    assert learner_id.startswith("id-") and len(learner_id) == 19 and learner_id != client_id
    # stable: one learner's lines correlate, and support can find them again
    assert learner_id == cli("log-id", LEARNER, data_dir=install.data_dir).stdout.strip()

    log = server.log()
    audit = cli("audit", "export", data_dir=install.data_dir).stdout
    for name, text in (("server log", log), ("audit log", audit), ("setup/status", str(status["lastFailure"]))):
        assert LEARNER not in text and CLIENT not in text, name
    assert f"/v1/headless/user/{learner_id}" in log and f"/api/v1/headless/user/{learner_id}" in log
    assert f"/v1/headless/client/{client_id}" in log and f"/v1/headless/usage/client/{client_id}" in log
    assert f"/v1/headless/user/{learner_id}/no-such-route" in log
    assert "/v1/headless/user/trackings" in log  # a route, not a user
    assert f"/v1/headless/user/{learner_id}" in audit
    assert status["lastFailure"]["route"] == f"/v1/headless/user/{learner_id}"


def test_log_ids_differ_between_installs(served: tuple[Server, Install], tmp_path) -> None:  # type: ignore[no-untyped-def]
    _, install = served
    other = init_data_dir(tmp_path / "other")
    mine = cli("log-id", LEARNER, data_dir=install.data_dir).stdout.strip()
    theirs = cli("log-id", LEARNER, data_dir=other.data_dir).stdout.strip()
    assert mine != theirs
