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
        ("[sever]\nport = 1\n", {}, r"unknown table\(s\): \[sever\]"),
        ("[ai]\nlocla = false\n", {}, r"unknown setting\(s\) in \[ai\]: locla"),
        ("[embeds]\nurl_second = 60\n", {}, r"unknown setting\(s\) in \[embeds\]: url_second"),
        ("[ai]\nlocal = 'maybe'\n", {}, "ai.local: 'maybe' is not a valid bool"),
        ("", {"APPLIANCE_AI_LOCAL": "maybe"}, "APPLIANCE_AI_LOCAL.*not a valid bool"),
        ("[ai]\nn_ctx = 'big'\n", {}, "ai.n_ctx: 'big' is not a valid int"),
        ("[ai]\nremote_engines = [{ url = 'http://gpu', modle = 'x' }]\n", {}, r"remote_engines\[0\]: modle"),
        ("[ai]\nremote_engines = [{ name = 'gpu' }]\n", {}, "needs a url"),
        ("[ai]\nremote_engines = [{ url = 'http://gpu', response_format = 'xml' }]\n", {}, "json_object"),
        ("ai = 3\n", {}, r"\[ai\] must be a table"),
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


def test_ai_table_is_typed_and_the_environment_overrides_it(tmp_path: Path) -> None:
    assert config.load(tmp_path, environ={}).ai == config.AISettings()
    (tmp_path / config.CONFIG_FILE).write_text(
        '[ai]\nlocal = false\nn_ctx = 2048\nmodels_dir = "/from/file"\n'
        'remote_engines = ["http://a:8080/v1", { url = "http://b", name = "gpu1", model = "m" }]\n'
    )
    ai = config.load(tmp_path, environ={}).ai
    assert (ai.local, ai.n_ctx, ai.n_threads, ai.models_dir) == (False, 2048, None, "/from/file")
    assert [(e.url, e.name, e.model) for e in ai.remote_engines] == [
        ("http://a:8080/v1", "", "default"),
        ("http://b", "gpu1", "m"),
    ]
    env = {
        "APPLIANCE_AI_LOCAL": "yes",
        "APPLIANCE_AI_N_THREADS": "3",
        "APPLIANCE_AI_PARALLEL": "",  # empty: unset, the engine's default
        "APPLIANCE_AI_REMOTE_ENGINES": "http://c, http://d",
        "APPLIANCE_AI_MODELS_DIR": "/from/ai-variable",
        "APPLIANCE_MODELS_DIR": "/from/models-variable",  # the documented name wins
        "APPLIANCE_AI_TTS_MEMORY_MB": "4096",
    }
    ai = config.load(tmp_path, environ=env).ai
    assert (ai.local, ai.n_threads, ai.parallel, ai.tts_memory_mb) == (True, 3, None, 4096)
    assert ai.models_dir == "/from/models-variable"
    assert [e.url for e in ai.remote_engines] == ["http://c", "http://d"]


def test_every_table_is_a_section_of_the_model() -> None:
    names = config.setting_names()
    assert {"ai.local", "ai.tts_python", "embeds.url_seconds", "storage.purge_deleted_courses_days"} <= set(names)
    assert len(names) == len(set(names))
