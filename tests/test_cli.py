from __future__ import annotations

from pathlib import Path

from tests.helpers import Install, cli, create_key


def test_init_is_idempotent_and_never_reprints_keys(fresh_install: Install) -> None:
    again = cli("init", data_dir=fresh_install.data_dir).stdout
    assert "already initialised" in again
    assert "COASSEMBLE:" not in again


def test_keys_are_listed_without_values_and_revocable(fresh_install: Install) -> None:
    key = create_key(fresh_install.data_dir, fresh_install.workspace_id, "production")
    listing = cli("key", "list", data_dir=fresh_install.data_dir).stdout
    assert key.split(":")[2] not in listing
    assert "production" in listing and "test" in listing
    key_id = next(line.split("\t")[0] for line in listing.splitlines() if "production" in line)
    cli("key", "revoke", key_id, data_dir=fresh_install.data_dir)
    assert "revoked" in cli("key", "list", data_dir=fresh_install.data_dir).stdout
    again = cli("key", "revoke", key_id, data_dir=fresh_install.data_dir, check=False)
    assert again.returncode == 2 and "no active key" in again.stderr


def test_unknown_workspace_is_a_clear_error(fresh_install: Install) -> None:
    result = cli(
        "key", "create", "--workspace", "999", "--mode", "test", data_dir=fresh_install.data_dir, check=False
    )
    assert result.returncode == 2 and "workspace 999 does not exist" in result.stderr


def test_doctor_reports_ok_and_catches_a_bad_key_file(fresh_install: Install) -> None:
    assert cli("doctor", data_dir=fresh_install.data_dir).returncode == 0
    (fresh_install.data_dir / "master.key").chmod(0o644)
    result = cli("doctor", data_dir=fresh_install.data_dir, check=False)
    assert result.returncode == 1 and "readable by others" in result.stdout


def test_commands_need_an_initialised_data_dir(tmp_path: Path) -> None:
    result = cli("key", "list", data_dir=tmp_path / "nothing", check=False)
    assert result.returncode == 2 and "appliance init" in result.stderr
