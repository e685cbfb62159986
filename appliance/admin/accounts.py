"""Administrator accounts in the control database: scrypt passphrases, failed-login lockout.

There are no default credentials: the first administrator is made through the one-time setup link
(`admin.setup`) or `appliance admin create`. Partner API keys never reach this module: the headless
routes have no way to create an administrator.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlite_utils

from appliance.errors import Conflict, Invalid, NotFound
from appliance.security.audit import now_iso
from appliance.storage.database import Database, fetch_all, last_id

# scrypt at 2^15 x 8 (32 MiB, about 0.1 s here): OWASP's floor for scrypt
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MIN_PASSPHRASE = 12
MAX_PASSPHRASE = 1024


@dataclass(frozen=True)
class Admin:
    id: int
    name: str


class LoginRefused(Exception):
    """Wrong name or passphrase, or a locked account. `locked_now` is set on the failure that locked it."""

    def __init__(self, message: str, *, locked: bool = False, locked_now: bool = False) -> None:
        super().__init__(message)
        self.locked = locked
        self.locked_now = locked_now


def hash_passphrase(passphrase: str, salt: bytes | None = None, n: int = SCRYPT_N) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(
        passphrase.encode(), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P, maxmem=128 * n * SCRYPT_R * 2, dklen=32
    )
    b64 = base64.b64encode
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def passphrase_matches(passphrase: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        computed = hashlib.scrypt(
            passphrase.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=128 * int(n) * int(r) * 2,
            dklen=32,
        )
    except ValueError:
        return False
    return hmac.compare_digest(computed, base64.b64decode(digest))


# a constant-time stand-in for unknown names, so a wrong name costs what a wrong passphrase does
_DUMMY = hash_passphrase("not a passphrase anyone has", b"\0" * 16)


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise Invalid("An administrator name is 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit")
    return name


def check_passphrase(passphrase: str) -> str:
    if not MIN_PASSPHRASE <= len(passphrase) <= MAX_PASSPHRASE:
        raise Invalid(f"A passphrase has {MIN_PASSPHRASE} to {MAX_PASSPHRASE} characters")
    return passphrase


def count(control: Database) -> int:
    return int(control.read().execute("SELECT count(*) FROM admins").fetchone()[0])


def create(control: Database, name: str, passphrase: str, *, only_if_none: bool = False) -> Admin:
    """A new administrator. `only_if_none`: refused once any administrator exists (the setup link)."""
    check_name(name)
    stored = hash_passphrase(check_passphrase(passphrase))

    def job(db: sqlite_utils.Database) -> int:
        if only_if_none and db.execute("SELECT count(*) FROM admins").fetchone()[0]:
            raise Conflict("An administrator exists already; setup is closed")
        if db.execute("SELECT 1 FROM admins WHERE name = ?", [name]).fetchone():
            raise Conflict(f"An administrator named {name} exists already")
        cursor = db.execute("INSERT INTO admins (name, hash, created) VALUES (?, ?, ?)", [name, stored, now_iso()])
        return last_id(cursor)

    return Admin(control.write(job), name)


def list_admins(control: Database) -> list[dict[str, Any]]:
    return fetch_all(
        control.read(), "SELECT id, name, created, last_login, failed, locked_until FROM admins ORDER BY name", []
    )


def reset_passphrase(control: Database, name: str, passphrase: str) -> None:
    """A new passphrase; unlocks the account and ends its sessions."""
    stored = hash_passphrase(check_passphrase(passphrase))

    def job(db: sqlite_utils.Database) -> None:
        row = db.execute("SELECT id FROM admins WHERE name = ?", [name]).fetchone()
        if row is None:
            raise NotFound(f"no administrator named {name}")
        db.execute("UPDATE admins SET hash = ?, failed = 0, locked_until = NULL WHERE id = ?", [stored, row[0]])
        db.execute("DELETE FROM admin_sessions WHERE admin_id = ?", [row[0]])

    control.write(job)


def remove(control: Database, name: str) -> None:
    def job(db: sqlite_utils.Database) -> None:
        row = db.execute("SELECT id FROM admins WHERE name = ?", [name]).fetchone()
        if row is None:
            raise NotFound(f"no administrator named {name}")
        db.execute("DELETE FROM admin_sessions WHERE admin_id = ?", [row[0]])
        db.execute("DELETE FROM admins WHERE id = ?", [row[0]])

    control.write(job)


def login(control: Database, name: str, passphrase: str, max_failures: int, lockout_minutes: float) -> Admin:
    """The administrator whose passphrase this is, or LoginRefused. A locked account refuses even the
    right passphrase until `locked_until`; `max_failures` wrong ones in a row lock it."""
    row = control.read().execute("SELECT id, hash, locked_until FROM admins WHERE name = ?", [name]).fetchone()
    now = datetime.now(UTC)
    if row is None:
        passphrase_matches(passphrase, _DUMMY)
        raise LoginRefused("Wrong name or passphrase")
    admin_id, stored, locked_until = row
    if locked_until and datetime.fromisoformat(locked_until.replace("Z", "+00:00")) > now:
        raise LoginRefused("This account is locked after too many failed logins; try again later", locked=True)
    if passphrase_matches(passphrase, stored):
        control.write(
            lambda db: db.execute(
                "UPDATE admins SET failed = 0, locked_until = NULL, last_login = ? WHERE id = ?", [now_iso(), admin_id]
            )
        )
        return Admin(admin_id, name)
    until = (now + timedelta(minutes=lockout_minutes)).isoformat().replace("+00:00", "Z")

    def fail(db: sqlite_utils.Database) -> bool:
        failed = db.execute("SELECT failed FROM admins WHERE id = ?", [admin_id]).fetchone()[0] + 1
        locks = failed >= max_failures
        db.execute(
            "UPDATE admins SET failed = ?, locked_until = ? WHERE id = ?",
            [0 if locks else failed, until if locks else None, admin_id],
        )
        return bool(locks)

    if control.write(fail):
        raise LoginRefused("Wrong passphrase; the account is now locked after too many failed logins", locked=True, locked_now=True)
    raise LoginRefused("Wrong name or passphrase")
