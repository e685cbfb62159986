"""Minted links carry the scheme and host the appliance is reached at (issue 11): https under TLS
serve, the operator's `--embed-base`/`server.public_url` when set."""

from __future__ import annotations

import io
import zipfile

import httpx

from tests.helpers import Install, Server, start_server


def _mint(client: httpx.Client, key: str) -> str:
    answer = client.post(
        "/v1/headless/embed/course", json={"action": "view", "courseId": 1}, headers={"Authorization": key}
    )
    assert answer.status_code == 200, answer.text
    return answer.text


def _scorm_text(client: httpx.Client, key: str) -> str:
    answer = client.get("/v1/headless/course/scorm/1", headers={"Authorization": key})
    assert answer.status_code == 200, answer.text
    with zipfile.ZipFile(io.BytesIO(answer.content)) as package:
        return "\n".join(package.read(n).decode("utf-8", "replace") for n in package.namelist() if n.endswith((".js", ".html", ".json")))


def test_tls_serve_mints_https_links_that_work(fresh_install: Install) -> None:
    server = start_server(fresh_install.data_dir, "--tls-self-signed", scheme="https")
    try:
        for host in ("127.0.0.1", "localhost"):
            base = f"https://{host}:{server.port}"
            with httpx.Client(base_url=base, verify=False, timeout=30) as client:
                url = _mint(client, fresh_install.test_key)
                assert url.startswith(f"{base}/embed/course/"), url
                page = client.get(url)  # the link itself works against the TLS port
                assert page.status_code == 200 and "<!doctype html>" in page.text.lower()
                scorm = _scorm_text(client, fresh_install.test_key)
                assert f"{base}" in scorm and f"http://{host}:{server.port}" not in scorm
    finally:
        server.stop()


def test_embed_base_overrides_the_reached_address(fresh_install: Install) -> None:
    server = start_server(
        fresh_install.data_dir, "--tls-self-signed", "--embed-base", "https://learn.example.test/", scheme="https"
    )
    try:
        with httpx.Client(base_url=server.url, verify=False, timeout=30) as client:
            url = _mint(client, fresh_install.test_key)
            assert url.startswith("https://learn.example.test/embed/course/"), url
            assert "https://learn.example.test" in _scorm_text(client, fresh_install.test_key)
    finally:
        server.stop()


def test_plain_http_uses_the_host_the_caller_reached(server: Server, install: Install) -> None:
    with httpx.Client(base_url=f"http://localhost:{server.port}", timeout=30) as client:
        assert _mint(client, install.test_key).startswith(f"http://localhost:{server.port}/embed/course/")
    with server.client() as client:
        assert _mint(client, install.test_key).startswith(f"http://127.0.0.1:{server.port}/embed/course/")
