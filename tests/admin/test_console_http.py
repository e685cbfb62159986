"""The console over real HTTP against a real server: the setup link, login and lockout, sessions,
CSRF, and the wall between console sessions and partner API keys."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from litestar import Litestar

from appliance import config
from appliance.admin import setup
from appliance.runtime import open_runtime
from appliance.server.app import route_handlers
from tests.admin.console import PASSPHRASE, Visitor, audit_entries, csrf_of, setup_link
from tests.helpers import Install, Server, cli, init_data_dir, start_server

MAX_FAILURES = 3


@pytest.fixture(scope="module")
def console_install(tmp_path_factory: pytest.TempPathFactory) -> Install:
    return init_data_dir(tmp_path_factory.mktemp("console") / "data")


@pytest.fixture(scope="module")
def console_server(console_install: Install) -> Iterator[Server]:
    srv = start_server(console_install.data_dir, env={"APPLIANCE_ADMIN_MAX_FAILED_LOGINS": str(MAX_FAILURES)})
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def admin(console_server: Server) -> Iterator[Visitor]:
    """The first administrator, signed in through the setup link."""
    visitor = Visitor(console_server)
    response = visitor.set_up(setup_link(console_server))
    assert response.status_code == 303, response.text[:500]
    yield visitor
    visitor.close()


def test_init_prints_a_setup_link_that_makes_the_first_admin(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = cli("init", data_dir=tmp_path / "data").stdout
    link = re.search(r"Administrator setup link \(one use, valid 30 minutes\): (\S+)", out)
    assert link and "/admin/setup/" in link.group(1)
    token = link.group(1).rsplit("/", 1)[1]
    assert token not in (tmp_path / "data" / "control.db").read_bytes().decode("latin-1")  # stored hashed (and encrypted)
    server = start_server(tmp_path / "data")
    try:
        visitor = Visitor(server)
        used = visitor.set_up(f"{server.url}/admin/setup/{token}")
        assert used.status_code == 303 and used.headers["location"].startswith("/admin/")
        cookie = used.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/admin" in cookie
        assert "secure" not in cookie  # plain http here
        overview = visitor.get("/admin/")
        assert overview.status_code == 200 and "Signed in as <strong>ops</strong>" in overview.text
        again = Visitor(server).get(f"/admin/setup/{token}")
        assert again.status_code == 410 and "used already" in again.text
        assert "ops\t" in cli("admin", "list", data_dir=tmp_path / "data").stdout
    finally:
        server.stop()


def test_forged_expired_and_closed_setup_links_are_refused(console_server: Server, admin: Visitor) -> None:
    forged = Visitor(console_server).get("/admin/setup/" + "A" * 43)
    assert forged.status_code == 404 and "not valid" in forged.text
    runtime = open_runtime(config.load(console_server.data_dir))
    try:  # a link issued 31 minutes ago (issue() refuses once an admin exists: the row is written as it would be)
        token = "expired-" + "x" * 35
        moment = datetime.now(UTC) - timedelta(minutes=31)
        runtime.control.write(
            lambda db: db.execute(
                "INSERT INTO admin_setup_tokens (token_hash, created, expires) VALUES (?, ?, ?)",
                [setup._digest(token), setup._iso(moment), setup._iso(moment + setup.LIFETIME)],
            )
        )
        fresh = "fresh-" + "y" * 37
        runtime.control.write(
            lambda db: db.execute(
                "INSERT INTO admin_setup_tokens (token_hash, created, expires) VALUES (?, ?, ?)",
                [setup._digest(fresh), setup._iso(datetime.now(UTC)), setup._iso(datetime.now(UTC) + setup.LIFETIME)],
            )
        )
    finally:
        runtime.close()
    expired = Visitor(console_server).get(f"/admin/setup/{token}")
    assert expired.status_code == 410 and "expired" in expired.text
    closed = Visitor(console_server).get(f"/admin/setup/{fresh}")  # valid in time, but an admin exists
    assert closed.status_code == 410 and "Setup is complete" in closed.text
    assert "An administrator exists already" in cli("admin", "setup-link", data_dir=console_server.data_dir).stdout


def test_wrong_passphrases_lock_the_account_and_are_audited(console_server: Server, admin: Visitor) -> None:
    cli("admin", "create", "locky", data_dir=console_server.data_dir, input_text=PASSPHRASE + "\n")
    visitor = Visitor(console_server)
    for attempt in range(MAX_FAILURES):
        refused = visitor.login("locky", "wrong passphrase " + str(attempt))
        assert refused.status_code == (423 if attempt == MAX_FAILURES - 1 else 401), refused.text[:300]
    assert "locked" in refused.text
    right = visitor.login("locky", PASSPHRASE)  # the right passphrase is refused too while locked
    assert right.status_code == 423 and "appliance_admin=" not in right.headers.get("set-cookie", "")
    entries = audit_entries(console_server.data_dir)
    failed = [e for e in entries if e["route"] == "/admin/login" and e["target"] == "admin:locky" and e["status"] == 401]
    assert len(failed) == MAX_FAILURES - 1
    assert [e for e in entries if e["route"] == "admin lockout" and e["target"] == "admin:locky"]
    assert "locked until" in cli("admin", "list", data_dir=console_server.data_dir).stdout
    cli("admin", "reset-password", "locky", data_dir=console_server.data_dir, input_text=PASSPHRASE + "2\n")
    assert visitor.login("locky", PASSPHRASE + "2").status_code == 303


def test_a_post_without_the_csrf_token_is_refused(admin: Visitor, console_server: Server) -> None:
    for token in (None, "forged-token-value-000000000000"):
        fields = {"workspace": "1", "mode": "test", **({"csrf": token} if token else {})}
        refused = admin.http.post("/admin/keys/create", data=fields)
        assert refused.status_code == 403 and "Form refused" in refused.text
        assert "COASSEMBLE:" not in refused.text
    login = httpx.post(f"{console_server.url}/admin/login", data={"name": "ops", "passphrase": PASSPHRASE})
    assert login.status_code == 403  # the login form needs its token too (login CSRF)
    actions = [e for e in audit_entries(console_server.data_dir) if e["route"] == "/admin/keys/create"]
    assert actions and all(e["status"] == 403 for e in actions)


def test_a_session_cookie_replayed_after_logout_is_refused(console_server: Server) -> None:
    visitor = Visitor(console_server)
    assert visitor.login().status_code == 303
    cookie = visitor.http.cookies.get("appliance_admin")
    page = visitor.get("/admin/keys")
    assert page.status_code == 200
    out = visitor.http.post("/admin/logout", data={"csrf": csrf_of(page.text)})
    assert out.status_code == 303
    replay = httpx.Client(base_url=console_server.url, cookies={"appliance_admin": cookie}, follow_redirects=False)
    assert replay.get("/admin/keys").status_code == 303  # to the login page
    assert replay.get("/admin/keys").headers["location"] == "/admin/login"
    posted = replay.post("/admin/keys/create", data={"csrf": csrf_of(page.text), "workspace": "1", "mode": "test"})
    assert posted.status_code == 401 and "COASSEMBLE:" not in posted.text


def test_an_idle_session_ends(tmp_path) -> None:  # type: ignore[no-untyped-def]
    install = init_data_dir(tmp_path / "data")
    server = start_server(install.data_dir, env={"APPLIANCE_ADMIN_IDLE_MINUTES": "0.05"})  # 3 seconds
    try:
        visitor = Visitor(server)
        assert visitor.set_up(setup_link(server)).status_code == 303
        assert visitor.get("/admin/").status_code == 200
        time.sleep(1.5)
        assert visitor.get("/admin/").status_code == 200  # in use: still open
        time.sleep(4)
        assert visitor.get("/admin/").status_code == 303  # idle too long
    finally:
        server.stop()


def test_keys_created_in_the_console_are_shown_once_and_revocable(admin: Visitor, console_server: Server, console_install: Install) -> None:
    created = admin.form("/admin/keys", "/admin/keys/create", {"workspace": str(console_install.workspace_id), "mode": "test"})
    assert created.status_code == 201
    header = re.search(r"(COASSEMBLE:\d+:[0-9a-f]{64})", created.text).group(1)  # type: ignore[union-attr]
    key_id = re.search(r"Key <code>(key_[0-9a-f]+)</code>", created.text).group(1)  # type: ignore[union-attr]
    api = console_server.client(header)
    assert api.get("/v1/headless/courses").status_code == 200
    listing = admin.get("/admin/keys")
    assert key_id in listing.text and header not in listing.text and header[-64:] not in listing.text  # shown once
    revoked = admin.form("/admin/keys", "/admin/keys/revoke", {"key_id": key_id})
    assert revoked.status_code == 303
    assert api.get("/v1/headless/courses").status_code == 401
    entries = [e for e in audit_entries(console_server.data_dir) if e["route"] in ("/admin/keys/create", "/admin/keys/revoke") and e["status"] < 400]
    assert {(e["route"], e["actor"], e["target"]) for e in entries} >= {
        ("/admin/keys/create", "admin:ops", key_id), ("/admin/keys/revoke", "admin:ops", key_id)
    }


def test_api_keys_and_console_sessions_open_nothing_on_the_other_side(admin: Visitor, console_server: Server, console_install: Install) -> None:
    with_key = console_server.client(console_install.test_key, follow_redirects=False)
    assert with_key.get("/admin/").status_code == 303  # a partner key is no console login
    assert with_key.get("/admin/keys").headers["location"] == "/admin/login"
    with_cookie = httpx.Client(base_url=console_server.url, cookies=dict(admin.http.cookies))
    assert with_cookie.get("/admin/").status_code == 200
    assert with_cookie.get("/v1/headless/courses").status_code == 401  # a console session is no API key


def test_no_partner_api_route_creates_an_administrator(console_server: Server, console_install: Install) -> None:
    before = cli("admin", "list", data_dir=console_server.data_dir).stdout
    paths = [route.path for route in Litestar(route_handlers=route_handlers()).routes]
    assert len([p for p in paths if p.startswith("/v1/headless/")]) > 50
    assert not [p for p in paths if "headless" in p and "admin" in p.lower()]
    api = console_server.client(console_install.test_key)
    body = {"name": "intruder", "passphrase": PASSPHRASE, "again": PASSPHRASE}
    for path in ("/v1/headless/admins", "/v1/headless/admin", "/v1/headless/admin/setup", "/api/v1/headless/admins", "/v1/headless/setup"):
        response = api.post(path, json=body)
        assert response.status_code in (404, 405), (path, response.status_code)
    assert api.post("/admin/setup/" + "B" * 43, data=body).status_code == 403  # a key does not pass the setup form
    assert cli("admin", "list", data_dir=console_server.data_dir).stdout == before
    assert "intruder" not in before



def test_console_cookies_are_secure_under_tls(tmp_path) -> None:  # type: ignore[no-untyped-def]
    install = init_data_dir(tmp_path / "data")
    server = start_server(install.data_dir, "--tls-self-signed", scheme="https")
    try:
        response = httpx.get(f"{server.url}/admin/login", verify=False)
        cookie = response.headers["set-cookie"].lower()
        assert "; secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    finally:
        server.stop()
