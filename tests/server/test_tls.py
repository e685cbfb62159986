"""TLS 1.2+ only, with the self-signed certificate made at init."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

import httpx
import pytest

from tests.helpers import Install, Server, start_server


@pytest.fixture()
def tls_server(fresh_install: Install) -> Iterator[Server]:
    srv = start_server(fresh_install.data_dir, "--tls-self-signed", scheme="https")
    srv.extra["install"] = fresh_install
    yield srv
    srv.stop()


def _handshake(port: int, version: ssl.TLSVersion) -> str:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client offer old protocols at all
    ctx.minimum_version = version
    ctx.maximum_version = version
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, ctx.wrap_socket(raw) as tls:
        return str(tls.version())


def test_tls_12_and_13_work_and_11_is_refused(tls_server: Server) -> None:
    assert _handshake(tls_server.port, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    assert _handshake(tls_server.port, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
    with pytest.raises(ssl.SSLError):
        _handshake(tls_server.port, ssl.TLSVersion.TLSv1_1)


def test_api_over_tls_with_the_init_certificate(tls_server: Server) -> None:
    install: Install = tls_server.extra["install"]
    cert = install.data_dir / "tls" / "self-signed.crt"
    ctx = ssl.create_default_context(cafile=str(cert))
    with httpx.Client(base_url=f"https://localhost:{tls_server.port}", verify=ctx) as c:
        response = c.get("/v1/headless/courses", headers={"Authorization": install.test_key})
    assert response.status_code == 200
    assert response.json()[0]["title"] == "New starter induction"
    with pytest.raises(httpx.TransportError):  # plain HTTP to the TLS port gets no answer
        httpx.get(f"http://127.0.0.1:{tls_server.port}/health", timeout=3).raise_for_status()
