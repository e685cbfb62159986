"""Master key handling and key wrapping.

The master key (KEK) never touches a database. It comes from a 32-byte key file (mode 0600) or
from a passphrase through scrypt; it only wraps other keys (AES key wrap, RFC 3394).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import stat
from pathlib import Path

from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from appliance.storage import files

KEY_BYTES = 32
MASTER_KEY_FILE = "master.key"
MASTER_SALT_FILE = "master.salt"
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1


class KeyProblem(Exception):
    """A key is missing, unreadable, badly protected or wrong."""


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def wrap(kek: bytes, key: bytes) -> bytes:
    return aes_key_wrap(kek, key)


def unwrap(kek: bytes, wrapped: bytes) -> bytes:
    try:
        return aes_key_unwrap(kek, wrapped)
    except InvalidUnwrap:
        raise KeyProblem(
            "a wrapped key does not open with this master key (wrong key or passphrase?)"
        ) from None


def derive_from_passphrase(passphrase: str, salt: bytes) -> bytes:
    if len(passphrase) < 12:
        raise KeyProblem("the passphrase must be at least 12 characters")
    return hashlib.scrypt(
        passphrase.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=64 * 1024 * 1024, dklen=32
    )


def write_secret_file(path: Path, data: bytes) -> None:
    """Write a file readable only by its owner, atomically and durably."""
    files.durable_write(path, data, 0o600)


def create_master_key(data_dir: Path, passphrase: str | None = None) -> bytes:
    """Create the master key: a key file, or (sealed mode) a salt and a passphrase-derived key."""
    if passphrase is None:
        key = new_key()
        write_secret_file(data_dir / MASTER_KEY_FILE, key)
        return key
    salt = secrets.token_bytes(16)
    write_secret_file(data_dir / MASTER_SALT_FILE, salt)
    return derive_from_passphrase(passphrase, salt)


def is_sealed(data_dir: Path) -> bool:
    """Sealed mode: the master key is derived from a passphrase at start and never stored."""
    return (data_dir / MASTER_SALT_FILE).exists() and not (data_dir / MASTER_KEY_FILE).exists()


def load_master_key(data_dir: Path, passphrase: str | None = None) -> bytes:
    key_file = data_dir / MASTER_KEY_FILE
    if key_file.exists():
        mode = stat.S_IMODE(key_file.stat().st_mode)
        if mode & 0o077:
            raise KeyProblem(f"{key_file} is readable by others (mode {mode:o}); run: chmod 600 {key_file}")
        key = key_file.read_bytes()
        if len(key) != KEY_BYTES:
            raise KeyProblem(f"{key_file} does not hold a 256-bit key")
        return key
    salt_file = data_dir / MASTER_SALT_FILE
    if salt_file.exists():
        if passphrase is None:
            raise KeyProblem(
                "this data directory is sealed: give the passphrase (APPLIANCE_PASSPHRASE or stdin)"
            )
        return derive_from_passphrase(passphrase, salt_file.read_bytes())
    raise KeyProblem(f"no master key in {data_dir}: run 'appliance init --data-dir {data_dir}' first")


def reread_master_key(data_dir: Path) -> bytes | None:
    """The master key file as it is now (after an online rotation); None in sealed mode."""
    try:
        return load_master_key(data_dir) if (data_dir / MASTER_KEY_FILE).exists() else None
    except (KeyProblem, OSError):
        return None


def keyed_hash(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()
