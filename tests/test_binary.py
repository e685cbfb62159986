"""CI smoke test of the one-file binary: build it (cached), then init, serve, one API call, clean stop.

The binary runs with an empty environment (`env -i`, PATH only), as on a server with nothing else.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import REPO, free_port

BINARY = REPO / "build" / "dist" / "appliance"
CLEAN_ENV = ["env", "-i", "PATH=/usr/local/bin:/usr/bin:/bin"]  # nothing else: no HOME, no LANG


@pytest.fixture(scope="module")
def binary() -> Path:
    result = subprocess.run(
        ["bash", str(REPO / "build" / "binary.sh")], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, f"build failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    assert BINARY.is_file() and os.access(BINARY, os.X_OK)
    return BINARY


def test_binary_init_serve_and_clean_stop(binary: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    init = subprocess.run(
        [*CLEAN_ENV, str(binary), "init", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert init.returncode == 0, f"init failed:\n{init.stdout}\n{init.stderr}"
    match = re.search(r"Authorization value \(shown once\): (COASSEMBLE:\d+:[0-9a-f]{64})", init.stdout)
    assert match, init.stdout
    key = match.group(1)

    port = free_port()
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                *CLEAN_ENV,
                str(binary),
                "serve",
                "--data-dir",
                str(data_dir),
                "--port",
                str(port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"server exited early:\n{log_path.read_text(errors='replace')}"
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"no /health:\n{log_path.read_text(errors='replace')}"
            time.sleep(0.1)

        response = httpx.get(f"{url}/v1/headless/courses", headers={"Authorization": key}, timeout=30)
        assert response.status_code == 200, response.text
        assert "New starter induction" in [c["title"] for c in response.json()]
        # Bundled package data: the vendored swagger-ui is served from inside the binary.
        static = httpx.get(f"{url}/api/docs/static/swagger-ui-bundle.js", timeout=30)
        assert static.status_code == 200 and len(static.content) > 100_000
    finally:
        # `env` execs the binary, so the signal reaches the PyInstaller bootloader, which forwards it.
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
    log_text = log_path.read_text(errors="replace")
    assert code == 0, f"exit code {code}:\n{log_text}"
    assert "Traceback" not in log_text, log_text
