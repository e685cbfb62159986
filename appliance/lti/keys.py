"""The tool's own RSA signing keys, kept in the encrypted keyring (appliance.storage.keyring).

Generation `n` is the keyring entry `lti-tool/<n>`: a 4-byte length, the PKCS#8 DER private key,
zero padding to the 8-byte multiple AES key wrap needs. The highest generation signs (deep-linking
responses, AGS token requests); `/lti/jwks` serves it and the one before it, so a platform that
cached the old key keeps verifying during a rotation. `rotate` adds generation n+1 and drops n-1.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwcrypto.jwk import JWK

from appliance.storage.keyring import Keyring

PREFIX = "lti-tool/"
KEY_BITS = 2048


@dataclass(frozen=True)
class ToolKey:
    generation: int
    kid: str
    private_pem: str
    public_jwk: dict[str, Any]


def _pack(der: bytes) -> bytes:
    body = struct.pack(">I", len(der)) + der
    return body + b"\0" * (-len(body) % 8)


def _unpack(blob: bytes) -> bytes:
    (length,) = struct.unpack(">I", blob[:4])
    return blob[4 : 4 + length]


def _generations(keyring: Keyring) -> list[int]:
    found = sorted(int(n[len(PREFIX) :]) for n in keyring.names() if n.startswith(PREFIX) and n[len(PREFIX) :].isdigit())
    top = found[-1] if found else 0
    # another process (the CLI's rotate-key) may have added a generation since this keyring loaded
    while keyring.has(f"{PREFIX}{top + 1}"):
        top += 1
        found.append(top)
    return [g for g in found if keyring.has(f"{PREFIX}{g}")]


def _load(keyring: Keyring, generation: int) -> ToolKey:
    der = _unpack(keyring.get(f"{PREFIX}{generation}"))
    private = serialization.load_der_private_key(der, password=None)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    jwk = JWK.from_pem(pem.encode())
    public = json.loads(jwk.export_public())
    kid = f"g{generation}-{jwk.thumbprint()[:16]}"
    public.update({"kid": kid, "alg": "RS256", "use": "sig"})
    return ToolKey(generation, kid, pem, public)


def _create(keyring: Keyring, generation: int) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    der = private.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    keyring.replace(f"{PREFIX}{generation}", _pack(der))


def current(keyring: Keyring) -> ToolKey:
    """The signing key (created on first use)."""
    generations = _generations(keyring)
    if not generations:
        _create(keyring, 1)
        generations = [1]
    return _load(keyring, generations[-1])


def published(keyring: Keyring) -> list[ToolKey]:
    """Current and previous keys, newest first (what `/lti/jwks` serves)."""
    current(keyring)
    return [_load(keyring, g) for g in reversed(_generations(keyring)[-2:])]


def jwks(keyring: Keyring) -> dict[str, Any]:
    return {"keys": [k.public_jwk for k in published(keyring)]}


def rotate(keyring: Keyring) -> ToolKey:
    """A new current key; the old current stays published as previous, older ones are removed."""
    generations = _generations(keyring) or [current(keyring).generation]
    new = generations[-1] + 1
    _create(keyring, new)
    for old in generations[:-1]:
        keyring.remove(f"{PREFIX}{old}")
    return _load(keyring, new)
