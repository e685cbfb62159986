"""Operator secrets kept in the encrypted keyring, never in `appliance.toml`.

Today one kind: the API key of a remote AI engine (`[ai] remote_engines` tables). The config file
is plain text, so `config.load` refuses an `api_key` there; the operator stores it with
`appliance secret set remote-api-key:<engine name>` (value on stdin), or sets
`APPLIANCE_AI_REMOTE_API_KEY_<ENGINE NAME>` in the service's environment. When the runtime opens,
`attach_remote_api_keys` puts it into the engine's settings in memory, where `appliance.ai` reads it.

The keyring holds AES key-wrapped keys (RFC 3394: a multiple of 8 bytes, at least 16), so a secret
is stored length-prefixed and zero-padded.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Mapping

from appliance.config import AISettings, RemoteEngine, api_key_variable
from appliance.storage.crypto import KeyProblem
from appliance.storage.keyring import Keyring

PREFIX = "secret/"
REMOTE_API_KEY = "remote-api-key:"
KINDS = (REMOTE_API_KEY,)
MAX_BYTES = 4096


class SecretError(ValueError):
    pass


def check_name(name: str) -> str:
    if not name.startswith(KINDS) or len(name) <= len(REMOTE_API_KEY) or len(name) > 300:
        raise SecretError(f"secret names look like {REMOTE_API_KEY}<engine name> (the engine table's name, or its url)")
    return name


def _encode(value: str) -> bytes:
    raw = value.encode()
    if not raw or len(raw) > MAX_BYTES:
        raise SecretError(f"a secret is 1 to {MAX_BYTES} bytes")
    data = struct.pack(">I", len(raw)) + raw
    return data + b"\0" * (-len(data) % 8 if len(data) >= 16 else 16 - len(data))


def _decode(data: bytes) -> str:
    (length,) = struct.unpack(">I", data[:4])
    return data[4 : 4 + length].decode()


def put(keyring: Keyring, name: str, value: str) -> None:
    keyring.replace(PREFIX + check_name(name), _encode(value))


def get(keyring: Keyring, name: str) -> str | None:
    try:
        return _decode(keyring.get(PREFIX + name))
    except KeyProblem:
        return None


def remove(keyring: Keyring, name: str) -> bool:
    present = keyring.has(PREFIX + check_name(name))
    keyring.remove(PREFIX + name)
    return present


def names(keyring: Keyring) -> list[str]:
    return [n[len(PREFIX) :] for n in keyring.names() if n.startswith(PREFIX)]


def attach_remote_api_keys(ai: AISettings, keyring: Keyring, environ: Mapping[str, str]) -> AISettings:
    """The [ai] settings with each remote engine's api_key from the environment or the keyring."""
    attached: list[RemoteEngine] = []
    for engine in ai.remote_engines:
        key = environ.get(api_key_variable(engine.key_name)) or get(keyring, REMOTE_API_KEY + engine.key_name)
        attached.append(dataclasses.replace(engine, api_key=key) if key else engine)
    return dataclasses.replace(ai, remote_engines=attached)
