"""Webhook signatures (docs/webhooks.md).

`X-Coassemble-Signature: sha256=<hex(HMAC_SHA256(secret, "<timestamp>.<raw body>"))>`, where the
timestamp is the `X-Coassemble-Timestamp` header (Unix seconds) of that very attempt. Each retry is
signed afresh with its own timestamp; the body bytes never change.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
MAX_SKEW_SECONDS = 300


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_hex(32)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, *, now: float | None = None) -> bool:
    """What a receiver does: recompute, compare in constant time, reject stale timestamps."""
    if not timestamp.isdigit():
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > MAX_SKEW_SECONDS:
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)
