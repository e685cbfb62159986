"""CI smoke test of the one-file binary: build it (cached), then init, serve, one API call, clean stop;
and the same binary running the on-box model (SmolLM2-135M) and the sandboxed document reader.

The binary runs with an empty environment (`env -i`, PATH only), as on a server with nothing else.
"""

from __future__ import annotations

import json
import os
import re
import signal
import struct
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from appliance.ai.cpu_build import AVX512_FLAGS, cpu_flags
from tests.documents import fixtures as fx
from tests.helpers import REPO, TEST_ENV, free_port

BINARY = REPO / "build" / "dist" / "appliance"
CLEAN_ENV = ["env", "-i", "PATH=/usr/local/bin:/usr/bin:/bin"]  # nothing else: no HOME, no LANG
TEST_MODEL = "smollm2-135m-instruct"
TEST_MODEL_FILE = REPO / "models" / "smollm2-135m-instruct-q4_1.gguf"  # installed by `make test`
GENERATED_TYPES = {"text", "process", "checklist", "flashcards", "list"}  # a 1-screen course's types


@pytest.fixture(scope="module")
def binary() -> Path:
    result = subprocess.run(
        ["bash", str(REPO / "build" / "binary.sh")], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, f"build failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    assert BINARY.is_file() and os.access(BINARY, os.X_OK)
    return BINARY


def _stop_cleanly(process: subprocess.Popen[bytes], log_path: Path) -> None:
    """SIGTERM, then the server must exit 0 with no traceback in its log. (`env` execs the binary,
    so the signal reaches the PyInstaller bootloader, which forwards it.)"""
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
        _stop_cleanly(process, log_path)


def _run(
    binary: Path, *args: str, env: tuple[str, ...] = (), stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    command = [*CLEAN_ENV, *env, str(binary), *args]
    return subprocess.run(command, input=stdin, capture_output=True, timeout=120)


def _reader_input(text: bytes, memory_mb: int) -> bytes:
    header = json.dumps({"filename": "notes.txt", "limits": {}, "memory_mb": memory_mb}).encode()
    return struct.pack(">I", len(header)) + header + text


def test_binary_bundles_the_engine_the_manifest_and_the_tts_worker(binary: Path) -> None:
    from PyInstaller.archive.readers import CArchiveReader  # installed by build/binary.sh

    names = set(CArchiveReader(str(binary)).toc)
    assert {"models/manifest.json", "appliance/ai/tts_worker.py", "llama_cpp/lib/libllama.so"} <= names
    assert "appliance/release/trusted/coassemble-release-1.pub" in names  # the release key upgrades trust
    assert {f"llama_cpp/lib/lib{n}.so.0" for n in ("ggml", "ggml-cpu", "ggml-base", "llama")} <= names
    # the AVX-512 set beside it, complete, with its version stamp (appliance.ai.cpu_build)
    assert {f"llama_cpp/lib-avx512/lib{n}.so{v}" for n in ("ggml", "ggml-cpu", "ggml-base", "llama")
            for v in ("", ".0")} | {"llama_cpp/lib-avx512/VERSION"} <= names
    assert not any(n.startswith("llama_cpp/server") or n.endswith(".so.0.5.0") for n in names)  # build/hooks
    assert not any(n.endswith(".gguf") for n in names)  # the model stays outside


def test_binary_trusts_its_shipped_release_key(binary: Path, tmp_path: Path) -> None:
    """The frozen program finds the release keys it carries: a bundle by another key is refused
    naming the shipped key, and verifies once that key is given explicitly."""
    from appliance.release import signing
    from tests.release.conftest import make_bundle

    signing.generate(tmp_path / "throwaway.key", tmp_path / "throwaway.pub")
    made = make_bundle(tmp_path / "b.tar", binary, tmp_path / "throwaway.key", "9.9.9")
    refused = _run(binary, "release", "verify", str(made))
    shipped = signing.key_id(signing.load_public(signing.TRUSTED_DIR / "coassemble-release-1.pub"))
    assert refused.returncode == 2 and f"does not trust (trusted: {shipped})".encode() in refused.stderr, refused
    verified = _run(binary, "release", "verify", str(made), "--public-key", str(tmp_path / "throwaway.pub"))
    assert verified.returncode == 0 and b"verified: version 9.9.9" in verified.stdout, verified


def test_binary_upgrades_itself(binary: Path, tmp_path: Path) -> None:
    """The installed one-file binary replaces itself with a bundle's (a stand-in that answers /health):
    it runs the upgrade from a copy of itself, since it reads its own file for every later import."""
    from appliance.release import signing
    from tests.release.conftest import make_bundle, stand_in

    installed = tmp_path / "bin" / "appliance"
    installed.parent.mkdir()
    installed.write_bytes(binary.read_bytes())
    installed.chmod(0o755)
    data_dir = tmp_path / "data"
    assert _run(installed, "init", "--data-dir", str(data_dir)).returncode == 0
    signing.generate(tmp_path / "throwaway.key", tmp_path / "throwaway.pub")
    new = stand_in(tmp_path / "new" / "appliance", "9.9.9")
    made = make_bundle(tmp_path / "b.tar", new, tmp_path / "throwaway.key", "9.9.9")
    env = (f"APPLIANCE_UPGRADES_DEV_KEY={tmp_path / 'throwaway.pub'}",)
    upgraded = _run(installed, "upgrade", str(made), "--data-dir", str(data_dir), "--timeout", "60", env=env)
    out = (upgraded.stdout + upgraded.stderr).decode()
    assert upgraded.returncode == 0 and "Traceback" not in out and "upgrade: done: 9.9.9" in out, out
    assert installed.read_bytes() == new.read_bytes()
    assert installed.with_name("appliance.prev").read_bytes() == binary.read_bytes()
    assert not list(Path("/tmp").glob("appliance-upgrader-*/appliance"))  # the copy is gone


@pytest.mark.skipif(not TEST_MODEL_FILE.is_file(), reason=f"no {TEST_MODEL_FILE}: run `make test` first")
def test_binary_runs_the_model_and_the_document_reader(binary: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    init = _run(binary, "init", "--data-dir", str(data_dir))
    assert init.returncode == 0, init.stderr.decode()
    out = init.stdout.decode()
    key = re.search(r"(COASSEMBLE:\d+:[0-9a-f]{64})", out).group(1)  # type: ignore[union-attr]
    token = re.search(r"Metrics token \(shown once\): (\S+)", out).group(1)  # type: ignore[union-attr]

    # the model goes into the binary's default models dir, <data dir>/models, through the binary itself
    added = _run(binary, "model", "add", str(TEST_MODEL_FILE), "--data-dir", str(data_dir))
    assert added.returncode == 0, added.stderr.decode()
    assert (data_dir / "models" / TEST_MODEL_FILE.name).is_file()
    listed = _run(binary, "model", "list", env=(f"APPLIANCE_DATA_DIR={data_dir}",)).stdout.decode()
    assert re.search(rf"^\s+{TEST_MODEL}\s+installed", listed, re.M), listed  # the bundled manifest's entry
    assert re.search(r"^\* qwen2.5-coder-1.5b-instruct-q4_k_m\s+missing", listed, re.M), listed
    no_dir = _run(binary, "model", "list")
    assert no_dir.returncode == 2 and b"--data-dir" in no_dir.stderr  # never a guessed directory

    # the reader as the server starts it: the binary with its hidden argument; it caps its own memory
    big = b"".join(b"Paragraph %d about ladders and forklifts.\n\n" % i for i in range(40_000))
    capped = _run(binary, "_document-reader", stdin=_reader_input(big, 1))
    assert capped.returncode == 0 and json.loads(capped.stdout) == {
        "status": 422, "message": "The document needs too much memory to read"}, capped
    read = _run(binary, "_document-reader", stdin=_reader_input(big, 1024))
    answer = json.loads(read.stdout)
    assert answer["ok"] and answer["result"]["type"] == "text" and len(answer["result"]["blocks"]) == 40_000

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "serve.log"
    # as every test server (tests/helpers.TEST_ENV), and 1 thread: robust on a busy 2-core box
    env = (*(f"{k}={v}" for k, v in TEST_ENV.items()), "APPLIANCE_AI_N_THREADS=1")
    started = time.monotonic()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [*CLEAN_ENV, *env, str(binary), "serve", "--data-dir", str(data_dir), "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        health: dict[str, Any] = {}
        while health.get("status") != "ok":  # /health is 503 while the model loads
            assert process.poll() is None, f"server exited early:\n{log_path.read_text(errors='replace')}"
            assert time.monotonic() - started < 90, f"no /health:\n{log_path.read_text(errors='replace')}"
            try:
                answer = httpx.get(f"{url}/health", headers={"Authorization": f"Bearer {token}"}, timeout=2)
                health = answer.json()
            except httpx.HTTPError:
                time.sleep(0.1)
        print(f"binary: serving with the model loaded {time.monotonic() - started:.1f} s after start")
        assert health["checks"]["ai"] == "ready", health  # not "unavailable": llama_cpp and the model loaded
        # the model runs in the model process, which is the binary itself (docs/ai.md, "Model process")
        model_pid = int((data_dir / "run" / "model.pid").read_text())
        assert b"_model-host" in Path(f"/proc/{model_pid}/cmdline").read_bytes().split(b"\0")
        maps = Path(f"/proc/{model_pid}/maps").read_text()
        # llama.cpp's libraries, all from one set: the AVX-512 one exactly where this CPU has its flags
        folders = {Path(line.split()[-1]).parent.name for line in maps.splitlines()
                   if re.search(r"/lib(llama|ggml[-a-z]*)\.so", line)}
        assert folders == {"lib-avx512" if AVX512_FLAGS <= cpu_flags() else "lib"}, maps

        c = httpx.Client(base_url=url, headers={"Authorization": key}, timeout=300)
        # the bundled engine writes a course: a 502 (the product's "did not pass validation") fails
        # this test like any other answer that is not a course; the Python server's tests hold the
        # same model to the same standard (tests/ai/test_generation_api.py)
        body = {"prompt": "Ladder safety", "screenCount": 1, "identifier": "author-1"}
        response = c.post("/v1/headless/generate/course", json=body)
        assert response.status_code == 200, response.text
        course = response.json()
        assert len(course["screens"]) == 1 and course["title"] and course["identifier"] == "author-1", course
        screen = course["screens"][0]
        assert screen["title"] and screen["content"] and screen["type"]["name"] in GENERATED_TYPES, screen
        stored = c.get(f"/v1/headless/courses/{course['id']}")
        assert stored.status_code == 200 and stored.json()["screens"] == course["screens"], stored.text

        pdf = c.post("/v1/headless/documents", files={"file": ("handbook.pdf", fx.long_pdf(3))})
        assert pdf.status_code == 201, pdf.text
        record = pdf.json()
        assert (record["type"], record["pages"], record["title"]) == ("pdf", 3, "Site safety handbook")
        txt = c.post("/v1/headless/documents", files={"file": ("notes.txt", b"Ladders.\n\nThree points.")})
        assert txt.status_code == 201 and txt.json()["type"] == "text", txt.text
        hits = c.get(f"/v1/headless/documents/{record['id']}/search", params={"q": "marker002"}).json()
        assert hits and hits[0]["pages"][0] <= 2 <= hits[0]["pages"][1], hits
        malformed = b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 9 0 R >> trash"
        broken = c.post("/v1/headless/documents", files={"file": ("broken.pdf", malformed)})
        assert broken.status_code == 422 and "malformed" in broken.json()["message"].lower(), broken.text
        assert httpx.get(f"{url}/health", timeout=5).status_code == 200
    finally:
        _stop_cleanly(process, log_path)
