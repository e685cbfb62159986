"""Signed URLs and sessions over HTTP: mint endpoints, refusals, single-purpose tokens, no leaks."""

from __future__ import annotations

import base64
import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.embeds.tokens import SESSION_TYP, URL_TYP, Signer
from appliance.storage import crypto
from appliance.storage.keyring import Keyring
from tests.embeds.conftest import Appliance
from tests.helpers import cli

PREFIXES = ("/v1/headless", "/api/v1/headless")


def _b64(data: dict | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _parts(token: str) -> tuple[dict, dict]:
    h, p, _ = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return json.loads(base64.urlsafe_b64decode(pad(h))), json.loads(base64.urlsafe_b64decode(pad(p)))


def _signer(appliance: Appliance) -> Signer:
    data_dir = appliance.install.data_dir
    return Signer(Keyring(data_dir, crypto.load_master_key(data_dir)))


def _mint(api, body=None, prefix="/v1/headless", path="/embed/course"):  # type: ignore[no-untyped-def]
    return api.post(
        prefix + path,
        json=body if body is not None else {"action": "view", "courseId": 1, "identifier": "t-1"},
    )


def _token(url: str) -> str:
    return url.rsplit("/", 1)[1]


def _error(response, status: int) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"statusCode", "code", "error", "message"} and body["statusCode"] == status
    assert "eyJ" not in body["message"]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_mint_endpoints_answer_text_urls(appliance: Appliance, prefix: str) -> None:
    with appliance.api() as api:
        r = _mint(api, prefix=prefix)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        assert r.text.startswith(f"{appliance.url}/embed/course/")
        header, claims = _parts(_token(r.text))
        assert header == {"alg": "EdDSA", "typ": URL_TYP, "kid": "ws1"}
        assert claims["course"] == 1 and claims["kind"] == "course" and claims["action"] == "view"
        assert claims["exp"] - claims["iat"] == 3 * 3600 and claims["environment"] == "test"
        assert {"workspace", "identifier", "clientIdentifier", "options", "themeId", "jti"} <= set(claims)
        _error(_mint(api, {"action": "view", "courseId": 1, "options": []}, prefix), 422)
        _error(_mint(api, {"action": "view"}, prefix), 422)
        _error(_mint(api, {"action": "view", "courseId": 999}, prefix), 404)
        assert api.post(f"{prefix}/course/url", json={"action": "view", "id": 1}).text.startswith(
            appliance.url
        )
        assert (
            api.get(f"{prefix}/course/view", params={"id": 1, "colorPrimary": "#112233"}).status_code == 200
        )
        edit = api.get(f"{prefix}/course/edit").text  # no id: a new draft course, as the cloud does
        assert _parts(_token(edit))[1]["action"] == "edit" and _parts(_token(edit))[1]["course"] > 1
        for path, body in (
            ("/embed/analytics/course", {"courseId": 1}),
            ("/embed/analytics/user", {"identifier": "t-1"}),
        ):
            assert api.post(prefix + path, json=body).status_code == 200
        assert api.post(f"{prefix}/embed/analytics/user", json={}).status_code == 422


def test_entitlements(appliance: Appliance) -> None:
    data_dir = appliance.install.data_dir
    with appliance.api() as api:
        cli("workspace", "entitlement", "--workspace", "1", "api_authoring", "off", data_dir=data_dir)
        cli("workspace", "entitlement", "--workspace", "1", "analytics", "off", data_dir=data_dir)
        try:
            _error(_mint(api, {"action": "edit", "courseId": 1}), 403)
            _error(api.post("/v1/headless/embed/analytics/course", json={"courseId": 1}), 403)
            assert _mint(api).status_code == 200
        finally:
            cli("workspace", "entitlement", "--workspace", "1", "api_authoring", "on", data_dir=data_dir)
            cli("workspace", "entitlement", "--workspace", "1", "analytics", "on", data_dir=data_dir)


def _exchange(api, token: str):  # type: ignore[no-untyped-def]
    return api.post("/embed/api/session", json={"token": token})


def test_refused_tokens(appliance: Appliance) -> None:
    signer = _signer(appliance)
    with appliance.api() as api:
        good = _token(_mint(api).text)
        header, claims = _parts(good)
        h, p, s = good.split(".")
        forged_claims = {**claims, "course": 2}
        cases = {
            "tampered": f"{h}.{_b64(forged_claims)}.{s}",
            "alg none": f"{_b64({**header, 'alg': 'none'})}.{p}.",
            "HS256 confusion": f"{_b64({**header, 'alg': 'HS256'})}.{p}.{s}",
            "RS256 confusion": f"{_b64({**header, 'alg': 'RS256'})}.{p}.{s}",
            "wrong typ": f"{_b64({**header, 'typ': SESSION_TYP})}.{p}.{s}",
            "garbage": "not-a-token",
        }
        other = Ed25519PrivateKey.generate()
        body = f"{h}.{p}"
        cases["foreign key"] = f"{body}.{_b64(other.sign(body.encode()))}"
        expired, _ = signer.sign(
            URL_TYP, {k: claims[k] for k in claims if k not in ("iss", "aud", "jti", "iat", "exp")}, -10
        )
        cases["expired"] = expired
        session_as_url, _ = signer.sign(
            SESSION_TYP, {"workspace": 1, "environment": "test", "kind": "course"}, 600
        )
        cases["session token as URL token"] = session_as_url
        # cross-tenant: a second workspace's key cannot sign for workspace 1
        cli("workspace", "create", "--name", "Other tenant", data_dir=appliance.install.data_dir)
        ws2, _ = signer.sign(
            URL_TYP,
            {"workspace": 2, "environment": "test", "kind": "course", "action": "view", "course": 1},
            600,
        )
        _h2, _p2, s2 = ws2.split(".")
        cases["cross-tenant"] = (
            f"{_b64({**_parts(ws2)[0], 'kid': 'ws1'})}.{_b64({**_parts(ws2)[1], 'workspace': 1})}.{s2}"
        )
        for name, token in cases.items():
            r = _exchange(api, token)
            _error(r, 401)
            assert r.json()["message"].startswith("This embed link is invalid or has expired"), name
            page = api.get(f"/embed/course/{token}")
            assert page.status_code == 401, name
        # wrong audience: correctly signed, but for another audience
        wrong_aud = dict(claims)
        wrong_aud_token, _ = signer.sign(
            URL_TYP, {k: v for k, v in claims.items() if k not in ("iss", "aud", "jti", "iat", "exp")}, 600
        )
        hh, _pp, _ = wrong_aud_token.split(".")
        payload = {**_parts(wrong_aud_token)[1], "aud": "embed-session"}
        key = signer._key(1, create=False)
        tampered_input = f"{hh}.{_b64(payload)}"
        cases_aud = f"{tampered_input}.{_b64(key.sign(tampered_input.encode()))}"
        _error(_exchange(api, cases_aud), 401)
        assert wrong_aud  # the page of another kind refuses the token too
        assert api.get(f"/embed/collection/{good}").status_code == 401
        assert api.get(f"/embed/course/{good}").status_code == 200


def test_single_purpose_sessions(appliance: Appliance) -> None:
    with appliance.api() as api:
        view = _exchange(api, _token(_mint(api).text)).json()
        assert set(view) >= {"session", "refreshToken", "expiresIn", "refreshIn", "context"}
        bearer = {"Authorization": f"Bearer {view['session']}"}
        assert api.get("/embed/api/course", headers=bearer).status_code == 200
        _error(api.get("/embed/api/draft", headers=bearer), 403)  # view cannot edit
        _error(
            api.get("/embed/api/course", params={"id": 2}, headers=bearer), 403
        )  # nor reach another course
        _error(api.get("/embed/api/analytics", headers=bearer), 403)
        assert api.get("/v1/headless/courses", headers=bearer).status_code == 401  # not an API key
        edit = _exchange(api, _token(_mint(api, {"action": "edit", "courseId": 1}).text)).json()
        ebearer = {"Authorization": f"Bearer {edit['session']}"}
        assert api.get("/embed/api/draft", headers=ebearer).status_code == 200
        _error(api.post("/embed/api/track", json={"event": "start"}, headers=ebearer), 403)
        _error(api.get("/embed/api/course", headers={"Authorization": "Bearer nope"}), 401)
        # rotation: each refresh token works once
        first = api.post("/embed/api/session/refresh", json={"refreshToken": view["refreshToken"]})
        assert first.status_code == 200 and first.json()["refreshToken"] != view["refreshToken"]
        assert (
            api.get(
                "/embed/api/course", headers={"Authorization": f"Bearer {first.json()['session']}"}
            ).status_code
            == 200
        )
        _error(api.post("/embed/api/session/refresh", json={"refreshToken": view["refreshToken"]}), 401)
        _error(
            api.get("/embed/api/course", headers={"Authorization": f"Bearer {first.json()['session']}"}), 401
        )


def test_progress_only_increases_and_analytics_scope(appliance: Appliance) -> None:
    with appliance.api() as api:
        for ident, client in (("an-1", "acme"), ("an-2", "globex")):
            s = _exchange(
                api,
                _token(
                    _mint(
                        api,
                        {"action": "view", "courseId": 1, "identifier": ident, "clientIdentifier": client},
                    ).text
                ),
            ).json()
            b = {"Authorization": f"Bearer {s['session']}"}
            assert api.post("/embed/api/track", json={"event": "start"}, headers=b).status_code == 200
            assert (
                api.post("/embed/api/track", json={"event": "progress", "progress": 60}, headers=b).json()[
                    "tracking"
                ]["progress"]
                == 60
            )
            assert (
                api.post("/embed/api/track", json={"event": "progress", "progress": 20}, headers=b).json()[
                    "tracking"
                ]["progress"]
                == 60
            )
            _error(api.post("/embed/api/track", json={"event": "progress", "progress": "x"}, headers=b), 422)
        url = api.post(
            "/v1/headless/embed/analytics/course", json={"courseId": 1, "clientIdentifier": "acme"}
        ).text
        s = _exchange(api, _token(url)).json()
        data = api.get("/embed/api/analytics", headers={"Authorization": f"Bearer {s['session']}"}).json()
        identifiers = {r["identifier"] for r in data["table"]}
        assert "an-1" in identifiers and "an-2" not in identifiers
        assert data["stats"]["learners"] == len(data["table"]) and data["options"] == {
            "stats": True,
            "chart": True,
            "table": True,
        }


def test_no_token_in_logs_audit_or_cookies(appliance: Appliance) -> None:
    with appliance.api() as api:
        url = _mint(api).text
        r = api.get(url.replace(appliance.url, ""))
        assert "set-cookie" not in r.headers
        assert r.headers["referrer-policy"] == "no-referrer"
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors *" in csp and "unsafe-inline" not in csp
        s = _exchange(api, _token(url))
        assert "set-cookie" not in s.headers
    time.sleep(0.5)
    audit = cli("audit", "export", data_dir=appliance.install.data_dir).stdout
    assert "eyJ" not in audit and "rt1." not in audit
    assert "embed-session:" in audit and "embed-link" in audit
    assert "eyJ" not in appliance.log() and "rt1." not in appliance.log()


def test_origins_cli_and_production_default(appliance: Appliance) -> None:
    out = cli(
        "workspace",
        "origins",
        "--workspace",
        "1",
        "--env",
        "production",
        "--add",
        "https://Partner.Example:443",
        data_dir=appliance.install.data_dir,
    ).stdout
    assert "https://partner.example" in out
    out = cli(
        "workspace",
        "origins",
        "--workspace",
        "1",
        "--env",
        "production",
        "--remove",
        "https://partner.example",
        data_dir=appliance.install.data_dir,
    ).stdout
    assert "none configured" in out
    assert (
        cli(
            "workspace",
            "origins",
            "--workspace",
            "1",
            "--env",
            "test",
            "--add",
            "javascript:alert(1)",
            data_dir=appliance.install.data_dir,
            check=False,
        ).returncode
        != 0
    )
    with appliance.api() as api:
        _error(api.put("/v1/headless/embed/origins", json={"origins": ["not an origin"]}), 422)
        assert api.get("/api/v1/headless/embed/origins").json() == {"environment": "test", "origins": []}
