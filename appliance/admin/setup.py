"""The first-run setup link: `<base>/admin/setup/<token>`, valid for 30 minutes, used once, and
only while no administrator exists. The token is stored as its SHA-256; the link is printed by
`appliance init` (and `appliance admin setup-link`), never logged.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from enum import Enum

import sqlite_utils

from appliance.admin import accounts
from appliance.errors import Conflict
from appliance.security.audit import now_iso
from appliance.storage.database import Database, last_id

LIFETIME = timedelta(minutes=30)


class TokenState(Enum):
    VALID = "valid"
    UNKNOWN = "unknown"  # forged, mistyped, or from another appliance
    USED = "used"
    EXPIRED = "expired"
    CLOSED = "closed"  # an administrator exists: setup is over


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def issue(control: Database, now: datetime | None = None) -> str:
    """A new setup token (returned once). Refused when an administrator exists."""
    token = secrets.token_urlsafe(32)
    moment = now or datetime.now(UTC)

    def job(db: sqlite_utils.Database) -> None:
        if db.execute("SELECT count(*) FROM admins").fetchone()[0]:
            raise Conflict("An administrator exists already: add others with `appliance admin create`")
        db.execute(
            "INSERT INTO admin_setup_tokens (token_hash, created, expires) VALUES (?, ?, ?)",
            [_digest(token), _iso(moment), _iso(moment + LIFETIME)],
        )

    control.write(job)
    return token


def link(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/admin/setup/{token}"


def _state(db: sqlite_utils.Database, token: str) -> TokenState:
    if len(token) > 100:
        return TokenState.UNKNOWN
    row = db.execute("SELECT expires, used FROM admin_setup_tokens WHERE token_hash = ?", [_digest(token)]).fetchone()
    if row is None:
        return TokenState.UNKNOWN
    if row[1]:
        return TokenState.USED
    if datetime.fromisoformat(row[0].replace("Z", "+00:00")) <= datetime.now(UTC):
        return TokenState.EXPIRED
    if db.execute("SELECT count(*) FROM admins").fetchone()[0]:
        return TokenState.CLOSED
    return TokenState.VALID


def state(control: Database, token: str) -> TokenState:
    return _state(control.read(), token)


def complete(control: Database, token: str, name: str, passphrase: str) -> tuple[TokenState, accounts.Admin | None]:
    """Use the token: the first administrator is created and every setup token is spent, in one
    transaction (two browsers racing on one link make one administrator)."""
    accounts.check_name(name)
    stored = accounts.hash_passphrase(accounts.check_passphrase(passphrase))

    def job(db: sqlite_utils.Database) -> tuple[TokenState, int | None]:
        found = _state(db, token)
        if found is not TokenState.VALID:
            return found, None
        cursor = db.execute("INSERT INTO admins (name, hash, created) VALUES (?, ?, ?)", [name, stored, now_iso()])
        db.execute("UPDATE admin_setup_tokens SET used = ? WHERE used IS NULL", [now_iso()])
        return found, last_id(cursor)

    result, admin_id = control.write(job)
    return result, accounts.Admin(admin_id, name) if admin_id is not None else None
