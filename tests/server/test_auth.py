"""Authentication and tenant isolation over real HTTP (decisions D1, D2)."""

from __future__ import annotations

import json

import pytest

from tests.helpers import Install, Server, cli, create_key

EXPECTED_401 = {
    "statusCode": 401,
    "code": "UNAUTHORIZED",
    "error": "Unauthorized",
    "message": "Invalid Authorization header",
}


def test_current_and_legacy_headers_work(server: Server, install: Install) -> None:
    secret = install.test_key.split(":")[2]
    legacy = f"COASSEMBLE-V1-SHA256 UserId={install.workspace_id}, UserToken={secret}"
    for value in (install.test_key, legacy):
        response = server.client(value).get("/v1/headless/courses")
        assert response.status_code == 200, response.text
        assert [c["title"] for c in response.json()] == ["New starter induction"]
    assert server.client(install.test_key).get("/api/v1/headless/courses").status_code == 200


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer {secret}",
        "COASSEMBLE:{ws}:" + "0" * 64,  # well-formed, unknown key
        "COASSEMBLE:{ws}:{secret_upper}",  # keys are lowercase hex
        "COASSEMBLE:{ws}:{secret_short}",
        "COASSEMBLE:{other_ws}:{secret}",  # right key, wrong workspace
        "COASSEMBLE {ws}:{secret}",
        "{secret}",
    ],
)
def test_bad_headers_get_401_with_the_error_body(
    server: Server, install: Install, header: str | None
) -> None:
    secret = install.test_key.split(":")[2]
    value = (
        None
        if header is None
        else header.format(
            ws=install.workspace_id,
            other_ws=install.workspace_id + 100,
            secret=secret,
            secret_upper=secret.upper(),
            secret_short=secret[:-1],
        )
    )
    for prefix in ("/v1/headless", "/api/v1/headless"):
        response = server.client(value).get(f"{prefix}/courses")
        assert response.status_code == 401
        assert response.json() == EXPECTED_401
        assert secret not in response.text


def test_revoked_key_gets_401(server: Server, install: Install) -> None:
    key = create_key(install.data_dir, install.workspace_id, "test")
    assert server.client(key).get("/v1/headless/courses").status_code == 200
    listing = cli("key", "list", "--workspace", str(install.workspace_id), data_dir=install.data_dir).stdout
    key_id = next(line.split("\t")[0] for line in listing.splitlines() if f"...{key[-4:]}" in line)
    cli("key", "revoke", key_id, data_dir=install.data_dir)
    response = server.client(key).get("/v1/headless/courses")
    assert response.status_code == 401
    assert response.json() == EXPECTED_401


def test_environments_and_workspaces_are_isolated(server: Server, install: Install) -> None:
    prod_key = create_key(install.data_dir, install.workspace_id, "production")
    other_ws = int(cli("workspace", "create", "--name", "Other", data_dir=install.data_dir).stdout.strip())
    other_key = create_key(install.data_dir, other_ws, "test")

    created = server.client(install.test_key).post("/v1/headless/themes", json={"name": "Test-only theme"})
    assert created.status_code == 200
    theme_id = created.json()["id"]

    prod = server.client(prod_key)
    assert prod.get("/v1/headless/courses").json() == []  # the demo course lives in test only
    assert all(t["name"] != "Test-only theme" for t in prod.get("/v1/headless/themes").json())
    other = server.client(other_key)
    assert all(t["name"] != "Test-only theme" for t in other.get("/v1/headless/themes").json())
    assert other.get(f"/v1/headless/themes/{theme_id}").status_code == 404
    assert prod.get(f"/v1/headless/themes/{theme_id}").status_code == 404
    # a key only ever works for its own workspace id, even when it is valid
    secret = other_key.split(":")[2]
    assert (
        server.client(f"COASSEMBLE:{install.workspace_id}:{secret}").get("/v1/headless/courses").status_code
        == 401
    )


def test_entitlement_off_gives_403(server: Server, install: Install) -> None:
    ws = int(cli("workspace", "create", "--name", "NoApi", data_dir=install.data_dir).stdout.strip())
    key = create_key(install.data_dir, ws, "test")
    assert server.client(key).get("/v1/headless/courses").status_code == 200
    cli("workspace", "entitlement", "--workspace", str(ws), "api", "off", data_dir=install.data_dir)
    response = server.client(key).get("/v1/headless/courses")
    assert response.status_code == 403
    assert response.json()["code"] == "FORBIDDEN" and response.json()["statusCode"] == 403


def test_key_never_appears_in_responses_logs_or_audit(server: Server, install: Install, tmp_path) -> None:  # type: ignore[no-untyped-def]
    secret = install.test_key.split(":")[2]
    client = server.client(install.test_key)
    client.get("/v1/headless/courses")
    client.get("/v1/headless/courses/999999")
    server.client("Bearer " + secret).get("/v1/headless/courses")
    server.client(f"COASSEMBLE:{install.workspace_id}:{secret[:-1]}x").get("/v1/headless/courses")
    assert secret not in server.log()
    export = tmp_path / "audit.jsonl"
    cli("audit", "export", "--output", str(export), data_dir=install.data_dir)
    text = export.read_text()
    assert secret not in text and secret[:-1] not in text
    entries = [json.loads(line) for line in text.splitlines()]
    assert any(e["status"] == 401 and e["actor"] == "anonymous" for e in entries)
    assert any(e["status"] == 404 and e["actor"].startswith("apikey:key_") for e in entries)
