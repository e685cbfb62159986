"""Learner and client identifiers pseudonymised wherever the appliance writes a log.

Request paths such as `/v1/headless/user/<identifier>` reach the access log (stderr, journald),
the audit log and `setup/status`. After a hard deletion (docs/security.md) the identifier must not
live on there, so those paths carry `id-<16 hex>` instead: an HMAC-SHA256 of the identifier under a
key derived from the keyring's pepper. It is stable, so one learner's lines still correlate, and the
operator can reproduce it for a support case with `appliance log-id <identifier>`; without the data
directory's keys it cannot be reversed or recomputed.
"""

from __future__ import annotations

import hashlib
import hmac
import re

CONTEXT = b"appliance log-id v1"
# the headless routes whose path names a user or client (the rest carry identifiers in bodies or
# query strings, which no log records); `/user/trackings` is a route of its own, not a user
_IDENTIFIED = re.compile(r"^((?:/api)?/v1/headless/(?:user|client|usage/client)/)([^/]+)(.*)$", re.DOTALL)


def log_key(pepper: bytes) -> bytes:
    """A key of its own for log ids (the pepper itself keys the API-key hashes)."""
    return hmac.new(pepper, CONTEXT, hashlib.sha256).digest()


def log_id(key: bytes, identifier: str) -> str:
    return "id-" + hmac.new(key, identifier.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:16]


def pseudonymise_path(key: bytes, path: str) -> str:
    match = _IDENTIFIED.match(path)
    if match is None:
        return path
    prefix, identifier, rest = match.groups()
    if prefix.endswith("/user/") and identifier == "trackings" and rest in ("", "/"):
        return path
    return prefix + log_id(key, identifier) + rest
