"""Administrator accounts, sessions and setup tokens on a real encrypted control database."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from appliance.admin import accounts, sessions, setup
from appliance.errors import Conflict, Invalid
from appliance.runtime import Runtime, initialise
from tests.admin.console import PASSPHRASE
from tests.helpers import cli


@pytest.fixture()
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    opened, _ = initialise(tmp_path / "data")
    yield opened
    opened.close()


def test_passphrases_are_stored_as_scrypt_and_checked(runtime: Runtime) -> None:
    admin = accounts.create(runtime.control, "ops", PASSPHRASE)
    stored = runtime.control.read().execute("SELECT hash FROM admins WHERE id = ?", [admin.id]).fetchone()[0]
    assert stored.startswith("scrypt$32768$8$1$") and PASSPHRASE not in stored
    assert accounts.login(runtime.control, "ops", PASSPHRASE, 5, 15) == admin
    with pytest.raises(accounts.LoginRefused):
        accounts.login(runtime.control, "ops", PASSPHRASE + "x", 5, 15)
    with pytest.raises(accounts.LoginRefused):
        accounts.login(runtime.control, "nobody", PASSPHRASE, 5, 15)
    with pytest.raises(Invalid):
        accounts.create(runtime.control, "short", "too short")
    with pytest.raises(Invalid):
        accounts.create(runtime.control, "<script>", PASSPHRASE)
    with pytest.raises(Conflict):
        accounts.create(runtime.control, "ops", PASSPHRASE)


def test_lockout_after_n_failures_expires(runtime: Runtime) -> None:
    accounts.create(runtime.control, "ops", PASSPHRASE)
    minutes = 1.5 / 60
    for n in range(3):
        with pytest.raises(accounts.LoginRefused) as refused:
            accounts.login(runtime.control, "ops", "wrong", 3, minutes)
        assert refused.value.locked_now == (n == 2)
    with pytest.raises(accounts.LoginRefused) as locked:
        accounts.login(runtime.control, "ops", PASSPHRASE, 3, minutes)
    assert locked.value.locked and not locked.value.locked_now
    time.sleep(2)
    assert accounts.login(runtime.control, "ops", PASSPHRASE, 3, minutes).name == "ops"


def test_a_right_passphrase_resets_the_failure_count(runtime: Runtime) -> None:
    accounts.create(runtime.control, "ops", PASSPHRASE)
    for _ in range(2):
        for _ in range(2):
            with pytest.raises(accounts.LoginRefused):
                accounts.login(runtime.control, "ops", "wrong", 3, 15)
        accounts.login(runtime.control, "ops", PASSPHRASE, 3, 15)  # never three in a row: never locked


def test_sessions_end_at_logout_reset_removal_and_idle(runtime: Runtime) -> None:
    admin = accounts.create(runtime.control, "ops", PASSPHRASE)
    token = sessions.start(runtime.control, admin.id, 12)
    found = sessions.find(runtime.control, token, 15, 12)
    assert found is not None and found.name == "ops" and sessions.csrf_ok(found, found.csrf)
    assert not sessions.csrf_ok(found, "") and not sessions.csrf_ok(found, found.csrf[:-1] + "x")
    sessions.end(runtime.control, token)
    assert sessions.find(runtime.control, token, 15, 12) is None
    token = sessions.start(runtime.control, admin.id, 12)
    accounts.reset_passphrase(runtime.control, "ops", PASSPHRASE + "2")
    assert sessions.find(runtime.control, token, 15, 12) is None
    token = sessions.start(runtime.control, admin.id, 12)
    time.sleep(1.2)
    assert sessions.find(runtime.control, token, 1 / 60, 12) is None  # idle longer than a second
    token = sessions.start(runtime.control, admin.id, 12)
    accounts.remove(runtime.control, "ops")
    assert sessions.find(runtime.control, token, 15, 12) is None


def test_old_sessions_are_deleted_at_the_next_login(runtime: Runtime) -> None:
    admin = accounts.create(runtime.control, "ops", PASSPHRASE)
    sessions.start(runtime.control, admin.id, 12)
    time.sleep(1.1)
    sessions.start(runtime.control, admin.id, 1 / 3600)  # a one-second lifetime: the first is stale
    assert runtime.control.read().execute("SELECT count(*) FROM admin_sessions").fetchone()[0] == 1


def test_a_setup_token_is_used_once_and_expires(runtime: Runtime) -> None:
    old = setup.issue(runtime.control, now=datetime.now(UTC) - timedelta(minutes=30, seconds=1))
    assert setup.state(runtime.control, old) is setup.TokenState.EXPIRED
    token = setup.issue(runtime.control)
    other = setup.issue(runtime.control)
    assert setup.state(runtime.control, "forged") is setup.TokenState.UNKNOWN
    state, admin = setup.complete(runtime.control, token, "ops", PASSPHRASE)
    assert state is setup.TokenState.VALID and admin is not None
    assert setup.complete(runtime.control, token, "ops2", PASSPHRASE) == (setup.TokenState.USED, None)
    assert setup.complete(runtime.control, other, "ops3", PASSPHRASE) == (setup.TokenState.USED, None)  # all spent
    with pytest.raises(Conflict):
        setup.issue(runtime.control)
    assert [a["name"] for a in accounts.list_admins(runtime.control)] == ["ops"]


def test_the_admin_commands(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cli("init", data_dir=data)
    cli("admin", "create", "ops", data_dir=data, input_text=PASSPHRASE + "\n")
    assert cli("admin", "create", "ops", data_dir=data, input_text=PASSPHRASE + "\n", check=False).returncode == 2
    short = cli("admin", "create", "other", data_dir=data, input_text="short\n", check=False)
    assert short.returncode == 2 and "12" in short.stderr
    assert cli("admin", "list", data_dir=data).stdout.startswith("ops\t")
    cli("admin", "reset-password", "ops", data_dir=data, input_text=PASSPHRASE + "!\n")
    cli("admin", "remove", "ops", data_dir=data)
    assert cli("admin", "list", data_dir=data).stdout == ""
    assert cli("admin", "remove", "ops", data_dir=data, check=False).returncode == 2
    audit = cli("audit", "export", data_dir=data).stdout
    assert '"route": "admin create"' in audit and '"route": "admin remove"' in audit and PASSPHRASE not in audit
