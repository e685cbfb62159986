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


def test_version_and_the_model_commands_are_part_of_the_one_command_line(tmp_path: Path) -> None:
    from appliance import __version__

    assert cli("--version").stdout.strip() == f"appliance {__version__}"
    listing = cli("model", "list", "--models-dir", str(tmp_path)).stdout  # no manifest there: the shipped one
    assert "smollm2-135m-instruct" in listing and "missing" in listing


def test_a_typo_in_any_table_stops_every_command_naming_it(fresh_install: Install) -> None:
    config_file = fresh_install.data_dir / "appliance.toml"
    original = config_file.read_text()
    for table, typo in (("ai", "locla = false"), ("embeds", "url_second = 60")):
        config_file.write_text(f"{original}\n[{table}]\n{typo}\n")  # neither table is in the default file
        result = cli("key", "list", data_dir=fresh_install.data_dir, check=False)
        assert result.returncode == 2, result
        assert f"unknown setting(s) in [{table}]: {typo.split()[0]}" in result.stderr
    config_file.write_text(original)
    result = cli("key", "list", data_dir=fresh_install.data_dir, env={"APPLIANCE_AI_LOCAL": "maybe"}, check=False)
    assert result.returncode == 2 and "APPLIANCE_AI_LOCAL" in result.stderr and "not a valid bool" in result.stderr
