"""Secrets never sit in the plain-text config file: a remote AI engine's api_key there is
refused; kept in the encrypted keyring (`appliance secret set`) or the environment, it reaches the
engine and nothing else."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from appliance import config
from appliance.runtime import open_runtime
from tests.helpers import Install, cli, free_port, start_server

PLAINTEXT = "sk-plaintext-in-config-5150"
KEYRING_SECRET = "sk-from-keyring-7788-abcdef"


class FakeEngine(ThreadingHTTPServer):
    """An OpenAI-compatible engine that only answers the health probe and notes who called."""

    def __init__(self) -> None:
        self.authorizations: list[str] = []
        engine = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # http.server's name for the GET handler
                engine.authorizations.append(self.headers.get("authorization", ""))
                body = json.dumps({"object": "list", "data": [{"id": "fake"}]}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", free_port()), Handler)


@pytest.fixture()
def engine() -> Iterator[FakeEngine]:
    server = FakeEngine()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _ai_config(data_dir: Path, port: int, extra: str = "") -> None:
    (data_dir / "appliance.toml").write_text(
        "[ai]\nlocal = false\nremote_health_interval_seconds = 0.2\n"
        f'remote_engines = [{{ url = "http://127.0.0.1:{port}", name = "gpu1", model = "fake"{extra} }}]\n'
    )


def test_api_key_in_the_config_file_is_refused(fresh_install: Install) -> None:
    _ai_config(fresh_install.data_dir, 9, f', api_key = "{PLAINTEXT}"')
    result = cli("key", "list", data_dir=fresh_install.data_dir, check=False)
    assert result.returncode != 0
    assert "appliance secret set remote-api-key:gpu1" in result.stderr, result.stderr
    assert "APPLIANCE_AI_REMOTE_API_KEY_GPU1" in result.stderr
    assert PLAINTEXT not in result.stdout + result.stderr  # the refusal never repeats the secret


def test_keyring_secret_reaches_the_engine_and_nothing_else(fresh_install: Install, engine: FakeEngine) -> None:
    data_dir = fresh_install.data_dir
    _ai_config(data_dir, engine.server_address[1])
    cli("secret", "set", "remote-api-key:gpu1", data_dir=data_dir, input_text=KEYRING_SECRET + "\n")
    assert cli("secret", "list", data_dir=data_dir).stdout.split() == ["remote-api-key:gpu1"]
    for path in data_dir.rglob("*"):
        if path.is_file():
            assert KEYRING_SECRET.encode() not in path.read_bytes(), path  # keyring.json holds it wrapped
    server = start_server(data_dir)
    try:
        deadline = time.monotonic() + 20
        while f"Bearer {KEYRING_SECRET}" not in engine.authorizations and time.monotonic() < deadline:
            time.sleep(0.1)
        assert f"Bearer {KEYRING_SECRET}" in engine.authorizations, engine.authorizations
        assert KEYRING_SECRET not in server.log()
    finally:
        server.stop()
    audit = cli("audit", "export", data_dir=data_dir).stdout
    assert "secret set" in audit and KEYRING_SECRET not in audit
    cli("secret", "remove", "remote-api-key:gpu1", data_dir=data_dir)
    assert cli("secret", "list", data_dir=data_dir).stdout.strip() == ""


def test_environment_secret_wins_over_the_keyring(fresh_install: Install, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = fresh_install.data_dir
    _ai_config(data_dir, 9)
    cli("secret", "set", "remote-api-key:gpu1", data_dir=data_dir, input_text=KEYRING_SECRET + "\n")
    runtime = open_runtime(config.load(data_dir))
    try:
        assert runtime.settings.ai.remote_engines[0].api_key == KEYRING_SECRET
    finally:
        runtime.close()
    monkeypatch.setenv("APPLIANCE_AI_REMOTE_API_KEY_GPU1", "sk-from-env")
    runtime = open_runtime(config.load(data_dir))
    try:
        assert runtime.settings.ai.remote_engines[0].api_key == "sk-from-env"
    finally:
        runtime.close()
    _error = cli("secret", "set", "not-a-kind", data_dir=data_dir, input_text="x\n", check=False)
    assert _error.returncode != 0 and "remote-api-key:" in _error.stderr
