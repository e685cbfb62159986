"""Platform registration refuses weak, malformed and oversized keys; the tool's key rotates and
`/lti/jwks` serves the current and the previous one."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.helpers import cli
from tests.lti.conftest import LtiSetup, new_rsa, public_jwk


def _add(lti: LtiSetup, keyset: str, tmp_path: Path, issuer: str = "https://lms.example") -> tuple[int, str]:
    path = tmp_path / "keys"
    path.write_text(keyset)
    out = cli(
        "lti", "add", "--data-dir", str(lti.install.data_dir), "--workspace", str(lti.install.workspace_id),
        "--issuer", issuer, "--client-id", "c1", "--deployment-id", "d1",
        "--auth-login-url", "https://lms.example/auth", "--auth-token-url", "https://lms.example/token",
        "--keyset-file", str(path), check=False,
    )
    return out.returncode, out.stderr


WEAK = {
    "hs256": (json.dumps({"keys": [{"kty": "oct", "kid": "k", "alg": "HS256", "k": "c2VjcmV0"}]}), "symmetric"),
    "rsa1024": (json.dumps({"keys": [public_jwk(new_rsa(1024), "k")]}), "at least 2048"),
    "rs-alg-none": (json.dumps({"keys": [public_jwk(new_rsa(), "k", alg="none")]}), "not allowed"),
    "not-json": ("{keys: nope", "not JSON"),
    "empty-keys": (json.dumps({"keys": []}), "non-empty"),
    "oversized": (json.dumps({"keys": [], "pad": "x" * 70_000}), "larger than"),
    "bad-modulus": (json.dumps({"keys": [{"kty": "RSA", "kid": "k", "n": "!!", "e": "AQAB"}]}), "not a valid"),
}


@pytest.mark.parametrize("kind", sorted(WEAK))
def test_weak_or_malformed_platform_keys_are_refused(kind: str) -> None:
    from appliance.errors import Invalid
    from appliance.lti.platforms import parse_keyset

    keyset, message = WEAK[kind]
    with pytest.raises(Invalid, match=message):
        parse_keyset(keyset)


def test_the_cli_refuses_a_weak_key_clearly(lti: LtiSetup, tmp_path: Path) -> None:
    code, stderr = _add(lti, WEAK["hs256"][0], tmp_path)
    assert code == 2 and "symmetric" in stderr and "Traceback" not in stderr, stderr


def test_a_pem_key_registers_and_an_unknown_platform_is_not_removed(lti: LtiSetup, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    pem = new_rsa().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    code, stderr = _add(lti, pem, tmp_path, issuer="https://pem.example")
    assert code == 0, stderr
    from appliance.lti.platforms import parse_keyset

    (key,) = parse_keyset(pem)["keys"]  # the PEM becomes one RS256 key named by its thumbprint
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and len(key["kid"]) >= 40
    removed = cli("lti", "remove", "9999", data_dir=lti.install.data_dir, check=False)
    assert removed.returncode == 2 and "not registered" in removed.stderr


def test_rotation_publishes_current_and_previous(lti: LtiSetup) -> None:
    before = httpx.get(f"{lti.server.url}/lti/jwks").json()["keys"]
    cli("lti", "rotate-key", data_dir=lti.install.data_dir)
    after = httpx.get(f"{lti.server.url}/lti/jwks").json()["keys"]  # the running server sees it
    assert len(after) == 2 and after[1]["kid"] == before[0]["kid"] and after[0]["kid"] != before[0]["kid"]
    assert all(k["kty"] == "RSA" and "d" not in k and k["alg"] == "RS256" for k in after)
