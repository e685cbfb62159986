"""The Coassemble Authorization header and API-key material.

Current form: `COASSEMBLE:<workspaceId>:<64 lowercase hex>`. Legacy form:
`COASSEMBLE-V1-SHA256 UserId=<workspaceId>, UserToken=<64 hex>`. Anything else is rejected with
`Invalid Authorization header`. Keys are stored only as an HMAC under the keyring's pepper, so a
stolen control database does not yield usable keys.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

CURRENT = re.compile(r"COASSEMBLE:(\d{1,18}):([0-9a-f]{64})")
LEGACY = re.compile(r"COASSEMBLE-V1-SHA256 UserId=(\d{1,18}), ?UserToken=([0-9a-f]{64})")
MODES = ("test", "production")
PEPPER_KEY = "apikey-pepper"


@dataclass(frozen=True)
class PresentedKey:
    workspace_id: int
    secret: str


def parse_authorization(value: str | None) -> PresentedKey | None:
    """Return the workspace id and key of a well-formed header, or None."""
    if not value or len(value) > 200:
        return None
    value = value.strip()
    match = CURRENT.fullmatch(value) or LEGACY.fullmatch(value)
    if match is None:
        return None
    return PresentedKey(int(match.group(1)), match.group(2))


def new_secret() -> str:
    return secrets.token_hex(32)


def new_key_id() -> str:
    return "key_" + secrets.token_hex(6)


def header_value(workspace_id: int, secret: str) -> str:
    return f"COASSEMBLE:{workspace_id}:{secret}"
