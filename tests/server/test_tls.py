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


def _client_hello(version: ssl.TLSVersion) -> bytes:
    """The first flight of a client that offers exactly `version` (made in memory, never sent)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = version
    ctx.maximum_version = version
    tls = ctx.wrap_bio(ssl.MemoryBIO(), outgoing := ssl.MemoryBIO())
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def _server_reply(port: int, hello: bytes) -> bytes:
    """Everything the server sends back to `hello` until it closes the connection (or 5 s pass)."""
    reply = b""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(hello)
        try:
            while chunk := raw.recv(4096):
                reply += chunk
        except TimeoutError:
            pass
    return reply


def test_tls_12_and_13_work_and_11_is_refused(tls_server: Server) -> None:
    assert _handshake(tls_server.port, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    assert _handshake(tls_server.port, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
    # A real TLS 1.1 ClientHello reaches the server (a handshake record whose client_version is 3.2,
    # 1.1's wire number), so a refusal is the server's and not the client's inability to offer 1.1.
    old = _client_hello(ssl.TLSVersion.TLSv1_1)
    assert old[0] == 0x16 and old[5] == 0x01 and old[9:11] == b"\x03\x02", old[:16].hex()
    # The same probe with 1.2 gets a ServerHello (a handshake record, 0x16 0x03 0x03) ...
    assert _server_reply(tls_server.port, _client_hello(ssl.TLSVersion.TLSv1_2))[:3] == b"\x16\x03\x03"
    # ... while 1.1 gets no handshake at all: the connection closes (uvicorn's asyncio TLS drops the
    # alert OpenSSL wrote when it refused the version) or, from a server that flushes it, a fatal
    # protocol_version alert (record 0x15, level 2, description 70).
    reply = _server_reply(tls_server.port, old)
    assert reply == b"" or (reply[0] == 0x15 and reply[5:7] == b"\x02\x46"), reply.hex()
    with pytest.raises(ssl.SSLError):  # and a TLS client sees a failed handshake, not a session
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
