"""Ed25519 release keys: key pairs, the public keys this build trusts, detached signatures.

A public key is a PEM SubjectPublicKeyInfo file (`*.pub`); its id is the first 16 hex digits of
the SHA-256 of its raw 32 bytes, printed by every command that uses it. A signature file is one
line, `ed25519 <key id> <base64 signature>`, so a refusal can name the key that signed.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

# the release keys shipped with this build (bundled into the binary by build/binary.sh)
TRUSTED_DIR = Path(__file__).resolve().parent / "trusted"
SIGNATURE_LINE = re.compile(r"ed25519 ([0-9a-f]{16}) ([A-Za-z0-9+/=]{86,88})\n?")


class SignatureError(Exception):
    """A signature that is missing, malformed, by a key not trusted here, or does not match."""


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate(private_path: Path, public_path: Path) -> str:
    """A new key pair: the private key (PKCS#8 PEM, mode 0600, never overwritten) and its public key."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    public = private.public_key()
    public_path.write_bytes(
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return key_id(public)


def load_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SignatureError(f"{path}: not a readable unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError(f"{path}: not an Ed25519 private key")
    return key


def load_public(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise SignatureError(f"{path}: not a readable PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError(f"{path}: not an Ed25519 public key")
    return key


def shipped_keys() -> dict[str, Ed25519PublicKey]:
    """The release keys of this build, by key id."""
    keys = [load_public(p) for p in sorted(TRUSTED_DIR.glob("*.pub"))]
    return {key_id(k): k for k in keys}


def sign(data: bytes, private: Ed25519PrivateKey) -> bytes:
    signature = base64.b64encode(private.sign(data)).decode()
    return f"ed25519 {key_id(private.public_key())} {signature}\n".encode()


def verify(data: bytes, signature_file: bytes, trusted: dict[str, Ed25519PublicKey]) -> str:
    """The id of the trusted key whose signature `signature_file` is over `data`, or SignatureError."""
    match = SIGNATURE_LINE.fullmatch(signature_file.decode("ascii", errors="replace"))
    if match is None:
        raise SignatureError("the signature file is malformed")
    kid, encoded = match.groups()
    public = trusted.get(kid)
    if public is None:
        known = ", ".join(sorted(trusted)) or "none"
        raise SignatureError(f"signed by key {kid}, which this appliance does not trust (trusted: {known})")
    try:
        public.verify(base64.b64decode(encoded), data)
    except (InvalidSignature, ValueError):
        raise SignatureError(f"the signature by key {kid} does not match the checksums") from None
    return kid
