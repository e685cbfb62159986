"""LTI launches against a real platform on loopback (tests/lti/conftest.py): a launch reaches the
player; every forged, replayed, expired or misdirected id_token is refused with a page and audited."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from tests.helpers import cli
from tests.lti.conftest import CLIENT_ID, KID, LTI, LtiSetup, audit_targets, new_rsa, seed_course


def _login(client: httpx.Client, lti: LtiSetup, target: str = "/lti/launch") -> dict[str, str]:
    """OIDC login initiation as the platform's browser would post it; the tool's redirect query."""
    answer = client.post("/lti/login", data=lti.platform.login_params(target))
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert location.startswith(f"{lti.platform.url}/auth?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def _launch(client: httpx.Client, id_token: str, state: str, path: str = "/lti/launch") -> httpx.Response:
    return client.post(path, data={"id_token": id_token, "state": state})


@pytest.fixture()
def client(lti: LtiSetup) -> Any:
    with httpx.Client(base_url=lti.server.url, timeout=30) as c:
        yield c


def test_launch_redirects_into_the_player_with_the_lti_learner(client: httpx.Client, lti: LtiSetup) -> None:
    auth = _login(client, lti)
    assert auth["redirect_uri"] == f"{lti.server.url}/lti/launch" and auth["prompt"] == "none"
    answer = _launch(client, lti.platform.sign(lti.platform.claims(auth["nonce"])), auth["state"])
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"].startswith(f"{lti.server.url}/embed/course/")
    token = answer.headers["location"].rsplit("/", 1)[1]
    claims = jwt.decode(token, options={"verify_signature": False})  # minted by the embed signer
    assert claims["identifier"] == f"lti:{lti.platform.issuer}:learner-1"
    assert claims["clientIdentifier"] == f"lti:{lti.platform.issuer}:course-section-7"
    assert claims["course"] == lti.course_id and claims["action"] == "view"
    page = client.get(answer.headers["location"])
    assert page.status_code == 200 and "course" in page.text
    from appliance import config
    from appliance.runtime import open_runtime
    from appliance.storage.database import fetch_all

    runtime = open_runtime(config.load(lti.install.data_dir))
    try:  # the launch's claims are not kept; its state and nonce were consumed
        kept = [r["k"] for r in fetch_all(runtime.control.read(), "SELECT k FROM lti_cache")]
    finally:
        runtime.close()
    assert not [k for k in kept if "launch-" in k or auth["nonce"] in k or auth["state"] in k], kept


def test_a_course_of_another_workspace_cannot_be_launched(client: httpx.Client, lti: LtiSetup) -> None:
    """A platform is registered in one workspace: a course id that exists only in another workspace
    is refused like a course that does not exist (each workspace has its own database)."""
    other = int(cli("workspace", "create", "--name", "Other tenant", data_dir=lti.install.data_dir).stdout.strip())
    theirs = seed_course(lti.install, other)
    while theirs <= lti.course_id + 3:  # an id the platform's own workspace has never used
        theirs = seed_course(lti.install, other)
    auth = _login(client, lti)
    claims = lti.platform.claims(auth["nonce"], **{LTI + "custom": {"course_id": str(theirs)}})
    answer = _launch(client, lti.platform.sign(claims), auth["state"])
    assert answer.status_code == 404 and "does not exist" in answer.text
    assert "location" not in answer.headers


REFUSALS = {
    "forged": ("bad-signature", 400),
    "wrong-audience": ("unknown-platform", 403),
    "expired": ("expired", 400),
    "unknown-deployment": ("unknown-deployment", 400),
    "hs256": ("weak-algorithm", 400),
    "malformed": ("malformed", 400),
}


def _bad_token(kind: str, lti: LtiSetup, nonce: str) -> str:
    platform = lti.platform
    claims = platform.claims(nonce)
    if kind == "forged":
        return platform.sign(claims, key=new_rsa())  # the platform's kid, another key
    if kind == "wrong-audience":
        return platform.sign({**claims, "aud": "some-other-tool"})
    if kind == "expired":
        return platform.sign({**claims, "iat": int(time.time()) - 900, "exp": int(time.time()) - 600})
    if kind == "unknown-deployment":
        return platform.sign({**claims, LTI + "deployment_id": "deployment-nobody-made"})
    if kind == "hs256":
        # algorithm confusion: HMAC keyed with the platform's public key bytes
        secret = json.dumps(platform.key.public_key().public_numbers().n).encode()
        return jwt.encode(claims, secret, algorithm="HS256", headers={"kid": KID})
    if kind == "malformed":
        return "not.a-jwt"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", sorted(REFUSALS))
def test_bad_id_tokens_are_refused_with_a_page_and_audited(client: httpx.Client, lti: LtiSetup, kind: str) -> None:
    reason, status = REFUSALS[kind]
    auth = _login(client, lti)
    answer = _launch(client, _bad_token(kind, lti, auth["nonce"]), auth["state"])
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert "This LTI launch was refused" in answer.text
    assert f"<code>{reason}</code>" in answer.text and "learner-1" not in answer.text


def test_replayed_launch_and_nonce_are_refused(client: httpx.Client, lti: LtiSetup) -> None:
    auth = _login(client, lti)
    token = lti.platform.sign(lti.platform.claims(auth["nonce"]))
    assert _launch(client, token, auth["state"]).status_code == 303
    replay = _launch(client, token, auth["state"])  # the same POST again: the state was consumed
    assert replay.status_code == 400 and "already used" in replay.text
    again = _login(client, lti)  # a fresh state, the old id_token (and its spent nonce)
    reused = _launch(client, token, again["state"])
    assert reused.status_code == 400 and "Nonce" in reused.text


def test_oversized_id_token_is_refused(client: httpx.Client, lti: LtiSetup) -> None:
    auth = _login(client, lti)
    answer = _launch(client, "a" * 20_000 + ".b.c", auth["state"])
    assert answer.status_code == 413 and "larger than" in answer.text


def test_login_from_an_unknown_platform_is_refused(client: httpx.Client, lti: LtiSetup) -> None:
    params = {**lti.platform.login_params(), "iss": "https://lms.elsewhere.example", "client_id": CLIENT_ID}
    answer = client.post("/lti/login", data=params)
    assert answer.status_code == 403 and "refused" in answer.text


def test_every_refusal_is_audited_with_its_reason(lti: LtiSetup) -> None:
    """Runs after the refusals above (file order): one read of the audit log for all of them."""
    targets = set(audit_targets(lti.install))
    expected = {f"lti-refused:{reason}" for reason, _ in REFUSALS.values()} | {
        "lti-refused:nonce", "lti-refused:state", "lti-refused:oversized", "lti-refused:unknown-platform",
    }
    assert expected <= targets, expected - targets
