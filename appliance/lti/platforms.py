"""Registered LTI platforms, per workspace and environment (control database `lti_platforms`).

A registration names the platform's issuer, the client id it gave this tool, its deployment ids,
its OIDC authorisation and token URLs, and its public keys: pasted as a JSON Web Key Set or a PEM
public key (nothing is fetched), or, only when the operator gives one, a keyset URL the platform
serves on the local network. Keys are checked here, once: RSA of at least 2048 bits (RS256/384/512)
or EC P-256 (ES256); symmetric keys, `none`, HS* and short RSA keys are refused, and so is a keyset
that is not JSON, too large or holds too many keys.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import sqlite_utils
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwcrypto.jwk import JWK

from appliance.errors import Conflict, Invalid, NotFound
from appliance.security.audit import now_iso
from appliance.storage.database import Database, fetch_all, fetch_one, last_id

MAX_KEYSET_BYTES = 64 * 1024
MAX_KEYS = 20
MIN_RSA_BITS = 2048
RSA_ALGS = ("RS256", "RS384", "RS512")
EC_ALGS = ("ES256",)
MAX_FIELD = 1000
MAX_DEPLOYMENTS = 50


def _url(value: str, name: str) -> str:
    text = (value or "").strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(text) > MAX_FIELD:
        raise Invalid(f"{name} must be an http(s) URL")
    if parts.username or parts.password:
        raise Invalid(f"{name} must not carry credentials")
    return text


def _text(value: str, name: str) -> str:
    text = (value or "").strip()
    if not text or len(text) > MAX_FIELD or any(ord(c) < 32 for c in text):
        raise Invalid(f"{name} must be 1 to {MAX_FIELD} printable characters")
    return text


def _check_jwk(key: Any) -> dict[str, Any]:
    if not isinstance(key, dict):
        raise Invalid("each key of the keyset must be a JSON object")
    kid = key.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > 200:
        raise Invalid("each key needs a kid (the platform names it in its tokens' header)")
    kty, alg = key.get("kty"), key.get("alg")
    if "d" in key or kty == "oct":
        raise Invalid(f"key {kid!r}: a private or symmetric key was given; paste the platform's public keys")
    try:
        public = JWK(**key).get_op_key("verify")
    except Exception as exc:  # jwcrypto raises several types for a malformed key
        raise Invalid(f"key {kid!r} is not a valid JSON Web Key ({type(exc).__name__})") from None
    if isinstance(public, rsa.RSAPublicKey):
        if alg is not None and alg not in RSA_ALGS:
            raise Invalid(f"key {kid!r}: algorithm {alg!r} is not allowed (RS256, RS384, RS512)")
        if public.key_size < MIN_RSA_BITS:
            raise Invalid(f"key {kid!r}: RSA key of {public.key_size} bits; at least {MIN_RSA_BITS} required")
    elif isinstance(public, ec.EllipticCurvePublicKey):
        if public.curve.name != "secp256r1" or alg not in EC_ALGS:
            raise Invalid(f"key {kid!r}: only EC P-256 keys with alg ES256 are allowed")
    else:
        raise Invalid(f"key {kid!r}: only RSA and EC P-256 public keys are allowed")
    clean = {k: v for k, v in key.items() if k in ("kty", "kid", "alg", "use", "n", "e", "crv", "x", "y")}
    clean.setdefault("alg", "RS256")  # the library's default for a key without alg
    return clean


def parse_keyset(text: str) -> dict[str, Any]:
    """A pasted JWKS (JSON) or PEM public key, as the checked JWKS the library verifies with."""
    data = (text or "").strip()
    if not data:
        raise Invalid("the platform's public keys are empty")
    if len(data.encode()) > MAX_KEYSET_BYTES:
        raise Invalid(f"the platform's public keys are larger than {MAX_KEYSET_BYTES} bytes")
    if data.startswith("-----BEGIN"):
        try:
            public = load_pem_public_key(data.encode())
        except ValueError:
            raise Invalid("the PEM text is not a public key") from None
        if not isinstance(public, rsa.RSAPublicKey):
            raise Invalid("a PEM key must be an RSA public key (or paste a JWKS)")
        jwk = JWK.from_pem(data.encode())
        key = json.loads(jwk.export_public()) | {"kid": jwk.thumbprint(), "alg": "RS256"}
        return {"keys": [_check_jwk(key)]}
    try:
        doc = json.loads(data)
    except ValueError:
        raise Invalid("the platform's keyset is not JSON (paste the JWKS or a PEM public key)") from None
    if isinstance(doc, dict) and "keys" not in doc and "kty" in doc:
        doc = {"keys": [doc]}
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list) or not doc["keys"]:
        raise Invalid('the keyset must be a JSON object with a non-empty "keys" list')
    if len(doc["keys"]) > MAX_KEYS:
        raise Invalid(f"the keyset holds more than {MAX_KEYS} keys")
    return {"keys": [_check_jwk(k) for k in doc["keys"]]}


def add(
    control: Database,
    *,
    workspace_id: int,
    environment: str,
    issuer: str,
    client_id: str,
    deployment_ids: list[str],
    auth_login_url: str,
    auth_token_url: str,
    keyset: str | None = None,
    keyset_url: str | None = None,
    auth_audience: str | None = None,
) -> int:
    if environment not in ("test", "production"):
        raise Invalid("environment must be test or production")
    deployments = sorted({_text(d, "deployment id") for d in deployment_ids})
    if not deployments or len(deployments) > MAX_DEPLOYMENTS:
        raise Invalid(f"give 1 to {MAX_DEPLOYMENTS} deployment ids")
    if (keyset is None) == (keyset_url is None):
        raise Invalid("give the platform's public keys (JWKS or PEM) or, instead, a keyset URL")
    row = {
        "workspace_id": workspace_id,
        "environment": environment,
        "issuer": _text(issuer, "issuer"),
        "client_id": _text(client_id, "client id"),
        "deployment_ids": json.dumps(deployments),
        "auth_login_url": _url(auth_login_url, "auth login URL"),
        "auth_token_url": _url(auth_token_url, "auth token URL"),
        "auth_audience": _text(auth_audience, "auth audience") if auth_audience else None,
        "keyset": json.dumps(parse_keyset(keyset)) if keyset is not None else None,
        "keyset_url": _url(keyset_url, "keyset URL") if keyset_url is not None else None,
        "created": now_iso(),
    }

    def job(w: sqlite_utils.Database) -> int:
        if fetch_one(w, "SELECT id FROM workspaces WHERE id = ?", [workspace_id]) is None:
            raise NotFound(f"workspace {workspace_id} does not exist")
        if fetch_one(
            w, "SELECT id FROM lti_platforms WHERE issuer = ? AND client_id = ?", [row["issuer"], row["client_id"]]
        ):
            raise Conflict("a platform with this issuer and client id is already registered")
        columns = ", ".join(row)
        cursor = w.execute(
            f"INSERT INTO lti_platforms ({columns}) VALUES ({', '.join('?' for _ in row)})", list(row.values())
        )
        return last_id(cursor)

    return control.write(job)


def public_view(row: dict[str, Any]) -> dict[str, Any]:
    keyset = json.loads(row["keyset"]) if row.get("keyset") else None
    return {
        "id": row["id"],
        "workspace": row["workspace_id"],
        "environment": row["environment"],
        "issuer": row["issuer"],
        "clientId": row["client_id"],
        "deploymentIds": json.loads(row["deployment_ids"]),
        "authLoginUrl": row["auth_login_url"],
        "authTokenUrl": row["auth_token_url"],
        "keys": [k["kid"] for k in keyset["keys"]] if keyset else [],
        "keysetUrl": row.get("keyset_url"),
        "created": row["created"],
    }


def list_platforms(control: Database, workspace_id: int | None = None) -> list[dict[str, Any]]:
    if workspace_id is None:
        return fetch_all(control.read(), "SELECT * FROM lti_platforms ORDER BY id")
    return fetch_all(control.read(), "SELECT * FROM lti_platforms WHERE workspace_id = ? ORDER BY id", [workspace_id])


def get(control: Database, platform_id: int) -> dict[str, Any]:
    row = fetch_one(control.read(), "SELECT * FROM lti_platforms WHERE id = ?", [platform_id])
    if row is None:
        raise NotFound(f"LTI platform {platform_id} is not registered")
    return row


def find(control: Database, issuer: str, client_id: str | None) -> dict[str, Any] | None:
    if not issuer or not client_id:
        return None
    return fetch_one(
        control.read(), "SELECT * FROM lti_platforms WHERE issuer = ? AND client_id = ?", [issuer, client_id]
    )


def remove(control: Database, platform_id: int, workspace_id: int | None = None) -> bool:
    def job(w: sqlite_utils.Database) -> bool:
        if workspace_id is None:
            cursor = w.execute("DELETE FROM lti_platforms WHERE id = ?", [platform_id])
        else:
            cursor = w.execute(
                "DELETE FROM lti_platforms WHERE id = ? AND workspace_id = ?", [platform_id, workspace_id]
            )
        return bool(cursor.rowcount)

    return control.write(job)
