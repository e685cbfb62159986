from __future__ import annotations

from pathlib import Path

import pytest

from appliance import config


def test_defaults_file_and_environment(tmp_path: Path) -> None:
    assert config.load(tmp_path).server.port == 8080
    (tmp_path / config.CONFIG_FILE).write_text(
        '[server]\nport = 9000\nhost = "0.0.0.0"\n[limits]\nrate_burst = 5\n'
    )
    settings = config.load(tmp_path, environ={"APPLIANCE_SERVER_PORT": "9100"})
    assert settings.server.port == 9100  # the environment wins
    assert settings.server.host == "0.0.0.0"
    assert settings.limits.rate_burst == 5


def test_the_default_file_parses(tmp_path: Path) -> None:
    (tmp_path / config.CONFIG_FILE).write_text(config.DEFAULT_TOML)
    assert config.load(tmp_path, environ={}).storage.synchronous == "FULL"


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("[server]\nport = 'abc'\n", {}, "not a valid int"),
        ("[server]\nprot = 1\n", {}, "unknown setting"),
        ("[storage]\nsynchronous = 'OFF'\n", {}, "synchronous"),
        ("", {"APPLIANCE_LOG_ACCESS_LOG": "maybe"}, "not a valid bool"),
        ("[server\n", {}, "appliance.toml"),
    ],
)
def test_bad_configuration_is_a_clear_error(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    (tmp_path / config.CONFIG_FILE).write_text(text)
    with pytest.raises(config.ConfigError, match=message):
        config.load(tmp_path, environ=env)


def test_data_dir_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("APPLIANCE_DATA_DIR", str(tmp_path))
    assert config.resolve_data_dir(None) == tmp_path
    monkeypatch.delenv("APPLIANCE_DATA_DIR")
    with pytest.raises(config.ConfigError):
        config.resolve_data_dir(None)
