"""Real objects for tests: data directories made by the real CLI, servers run as real processes."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

REPO = Path(__file__).resolve().parent.parent


def cli(
    *args: str,
    data_dir: Path | None = None,
    input_text: str | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "appliance", *args]
    if data_dir is not None:
        cmd += ["--data-dir", str(data_dir)]
    result = subprocess.run(
        cmd, capture_output=True, text=True, input=input_text, env={**os.environ, **(env or {})}, timeout=120
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@dataclass
class Install:
    data_dir: Path
    workspace_id: int
    test_key: str
    metrics_token: str


def init_data_dir(data_dir: Path) -> Install:
    out = cli("init", data_dir=data_dir).stdout
    workspace = int(re.search(r"Workspace id: (\d+)", out).group(1))  # type: ignore[union-attr]
    key = re.search(r"(COASSEMBLE:\d+:[0-9a-f]{64})", out).group(1)  # type: ignore[union-attr]
    token = re.search(r"Metrics token \(shown once\): (\S+)", out).group(1)  # type: ignore[union-attr]
    return Install(data_dir, workspace, key, token)


def create_key(data_dir: Path, workspace_id: int, mode: str) -> str:
    return cli(
        "key", "create", "--workspace", str(workspace_id), "--mode", mode, data_dir=data_dir
    ).stdout.strip()


# Debian's chromium driven by pip Playwright (never `playwright install`): lab-notes-browser-sqlcipher
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# servers in tests run the small test model (SmolLM2-135M), installed by `make test`. Its prose fails
# the quality gate on most screens, so test servers take the first answer (and report its flags)
# instead of rewriting each screen up to three times; the rewrite loop is tested on its own
# (tests/ai/test_course_writer.py) and with the model through engine-level calls.
#
# Under pytest-xdist (`make test` runs `-n 2`) each worker's model gets its share of the cores: llama.cpp's
# threads wait for each other by spinning, so two workers' models with a thread per core each would
# run 4 threads on 2 cores and slow each other down far more than a half share does.
XDIST_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
MODEL_THREADS = max(1, min(os.cpu_count() or 1, 8) // XDIST_WORKERS)
TEST_ENV = {
    "APPLIANCE_AI_MODEL": "smollm2-135m-instruct",
    "APPLIANCE_AI_QUALITY_RETRIES": "0",
    "APPLIANCE_AI_N_THREADS": str(MODEL_THREADS),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    data_dir: Path
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    scheme: str = "http"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def client(self, key: str | None = None, **kw: Any) -> httpx.Client:
        headers = {"Authorization": key} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, **{"timeout": 30, **kw})

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(
    data_dir: Path,
    *extra_args: str,
    env: dict[str, str] | None = None,
    scheme: str = "http",
    wrap: Callable[[list[str]], list[str]] | None = None,
    port: int | None = None,
) -> Server:
    """`wrap` turns the serve command into the one to run (e.g. inside `unshare` with a tmpfs data
    directory); it must end by exec'ing the command, so the process is the server itself. `port`
    is for callers whose configuration names the port (e.g. a public URL)."""
    port = port or free_port()
    log_path = data_dir.parent / f"server-{port}.log"
    log = open(log_path, "wb")
    command = [sys.executable, "-m", "appliance", "serve", "--data-dir", str(data_dir), "--port", str(port)]
    if "--workers" not in extra_args:  # one process unless the test asks (serve's default: one per core)
        command += ["--workers", "1"]
    process = subprocess.Popen(
        wrap([*command, *extra_args]) if wrap else [*command, *extra_args],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **TEST_ENV, **(env or {})},
    )
    server = Server(data_dir, port, process, log_path, scheme)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited early:\n{server.log()}")
        try:
            if httpx.get(f"{server.url}/health", timeout=1, verify=False).status_code == 200:
                return server  # up, with its model loaded
            time.sleep(0.1)
        except httpx.HTTPError:
            time.sleep(0.1)
    server.stop()
    raise AssertionError(f"server did not start:\n{server.log()}")


def all_pages(client: httpx.Client, path: str) -> list[Any]:
    """Every row of a paginated list route (0-based `page`, at most 100 per page, as the cloud)."""
    rows: list[Any] = []
    page = 0
    while True:
        response = client.get(path, params={"page": page, "length": 100})
        assert response.status_code == 200, response.text
        batch = response.json()
        rows += batch
        if len(batch) < 100:
            return rows
        page += 1


T = TypeVar("T")


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on a thread of its own: in the whole suite the session's Playwright (sync API)
    keeps an event loop running on the main thread, where asyncio.run refuses to start."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
