"""Embed tokens (docs/embeds.md, "Tokens"): compact JWTs signed with Ed25519 (`alg: EdDSA`).

Two token types, each explicitly typed in the JOSE header and bound to its own audience, so one can
never stand in for the other:

* `embed-url+jwt` (audience `embed-url`): the last segment of a signed URL, minted by the headless
  embed endpoints, valid `embeds.url_seconds` (3 hours).
* `embed-session+jwt` (audience `embed-session`): the in-memory session JWT the page receives in
  exchange, sent as a Bearer header, valid `embeds.session_seconds` (3 hours).

Every workspace signs with its own Ed25519 key (keyring `embed-signing/ws<id>`, a 32-byte seed),
named in the header's `kid`: a token that claims workspace 2 but was signed with workspace 1's
key does not verify. Verification accepts exactly `EdDSA` (no `none`, no HS/RS confusion), checks
`typ`, `kid`, `aud`, `iss`, `iat` and `exp`, and never reports *why* a token failed to the caller.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from appliance.storage.keyring import Keyring

ALG = "EdDSA"
ISSUER = "coassemble-appliance"
URL_TYP = "embed-url+jwt"
SESSION_TYP = "embed-session+jwt"
SCORM_TYP = "scorm-package+jwt"  # a dynamic SCORM package's view-only token (appliance/scorm)
AUDIENCE = {URL_TYP: "embed-url", SESSION_TYP: "embed-session", SCORM_TYP: "scorm-package"}
KINDS = ("course", "collection", "analytics/course", "analytics/collection", "analytics/user")
ACTIONS = ("view", "edit")
LEEWAY = 30  # seconds of clock skew tolerated on iat
MAX_TOKEN_BYTES = 8192


class TokenInvalid(Exception):
    """Any reason a token is refused; the reason is for logs and tests, never for the caller."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    if not text or any(
        c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" for c in text
    ):
        raise TokenInvalid("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TokenInvalid("not base64url") from None


def key_name(workspace_id: int) -> str:
    return f"embed-signing/ws{workspace_id}"


class Signer:
    """Signs and verifies embed tokens with the per-workspace keys of a keyring."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        self._private: dict[int, Ed25519PrivateKey] = {}

    def _key(self, workspace_id: int, *, create: bool) -> Ed25519PrivateKey:
        key = self._private.get(workspace_id)
        if key is None:
            name = key_name(workspace_id)
            if create:
                seed = self.keyring.create(name)
            elif self.keyring.has(name):
                seed = self.keyring.get(name)
            else:
                raise TokenInvalid("no signing key for this workspace")
            key = Ed25519PrivateKey.from_private_bytes(seed[:32])
            self._private[workspace_id] = key
        return key

    def public_key(self, workspace_id: int) -> Ed25519PublicKey:
        return self._key(workspace_id, create=True).public_key()

    def sign(self, typ: str, claims: dict[str, Any], lifetime: int) -> tuple[str, dict[str, Any]]:
        """Return the compact JWT and its full claims (with iss, aud, jti, iat, exp added)."""
        workspace_id = int(claims["workspace"])
        now = int(time.time())
        full = {
            "iss": ISSUER,
            "aud": AUDIENCE[typ],
            **claims,
            "jti": secrets.token_urlsafe(16),
            "iat": now,
            "exp": now + lifetime,
        }
        header = {"alg": ALG, "typ": typ, "kid": f"ws{workspace_id}"}
        signing_input = (
            b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url(json.dumps(full, separators=(",", ":")).encode())
        )
        signature = self._key(workspace_id, create=True).sign(signing_input.encode())
        return f"{signing_input}.{b64url(signature)}", full

    def verify(self, token: str, typ: str, *, now: float | None = None) -> dict[str, Any]:
        """The token's claims if it is a valid, unexpired token of type `typ`; else TokenInvalid."""
        if not token or len(token) > MAX_TOKEN_BYTES:
            raise TokenInvalid("missing or oversized")
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenInvalid("not a compact JWS")
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
        except ValueError:
            raise TokenInvalid("undecodable") from None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise TokenInvalid("not JSON objects")
        if header.get("alg") != ALG:
            raise TokenInvalid("algorithm not allowed")
        if header.get("typ") != typ:
            raise TokenInvalid("wrong token type")
        if set(header) - {"alg", "typ", "kid"}:
            raise TokenInvalid("unexpected header parameters")  # no jku/jwk/x5u/crit games
        workspace = claims.get("workspace")
        if (
            not isinstance(workspace, int)
            or isinstance(workspace, bool)
            or header.get("kid") != f"ws{workspace}"
        ):
            raise TokenInvalid("key id does not match the workspace")
        signature = b64url_decode(parts[2])
        try:
            self._key(workspace, create=False).public_key().verify(
                signature, f"{parts[0]}.{parts[1]}".encode()
            )
        except InvalidSignature:
            raise TokenInvalid("bad signature") from None
        moment = time.time() if now is None else now
        if claims.get("iss") != ISSUER or claims.get("aud") != AUDIENCE[typ]:
            raise TokenInvalid("wrong issuer or audience")
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int) or not isinstance(iat, int):
            raise TokenInvalid("missing exp/iat")
        if exp <= moment:
            raise TokenInvalid("expired")
        if iat > moment + LEEWAY:
            raise TokenInvalid("issued in the future")
        if claims.get("kind") not in KINDS or claims.get("environment") not in ("test", "production"):
            raise TokenInvalid("bad kind or environment")
        return claims
