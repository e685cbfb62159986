"""Console sessions, kept on the server: the cookie carries a random token, the control database its
SHA-256, the administrator, a CSRF token and when it was last used. Logging out deletes the row, so
a replayed cookie finds nothing; so do an idle or too old session, a reset passphrase, a removed
administrator.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlite_utils

from appliance.security.audit import now_iso
from appliance.storage.database import Database

COOKIE = "appliance_admin"
# last_seen is written at most this often, or a quarter of the idle timeout if that is shorter
# (each write is a control-database transaction)
TOUCH_SECONDS = 30


@dataclass(frozen=True)
class Session:
    admin_id: int
    name: str
    csrf: str
    token_hash: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def start(control: Database, admin_id: int, max_hours: float) -> str:
    """A new session; returns the cookie value (never stored). Sessions older than `max_hours`
    that nobody presented again are deleted here, so the table does not grow with every login."""
    token = secrets.token_urlsafe(32)
    now = now_iso()
    stale = (datetime.now(UTC) - timedelta(hours=max_hours)).isoformat(timespec="microseconds").replace("+00:00", "Z")

    def job(db: sqlite_utils.Database) -> None:
        db.execute("DELETE FROM admin_sessions WHERE created < ?", [stale])
        db.execute(
            "INSERT INTO admin_sessions (token_hash, admin_id, csrf, created, last_seen) VALUES (?, ?, ?, ?, ?)",
            [_digest(token), admin_id, secrets.token_urlsafe(32), now, now],
        )

    control.write(job)
    return token


def find(control: Database, token: str | None, idle_minutes: float, max_hours: float) -> Session | None:
    """The live session this cookie value opens, or None (an expired one is deleted)."""
    if not token or len(token) > 100:
        return None
    digest = _digest(token)
    row = (
        control.read()
        .execute(
            "SELECT s.admin_id, a.name, s.csrf, s.created, s.last_seen FROM admin_sessions s "
            "JOIN admins a ON a.id = s.admin_id WHERE s.token_hash = ?",
            [digest],
        )
        .fetchone()
    )
    if row is None:
        return None
    now = datetime.now(UTC)
    created, last_seen = _time(row[3]), _time(row[4])
    if now - last_seen > timedelta(minutes=idle_minutes) or now - created > timedelta(hours=max_hours):
        end(control, token)
        return None
    if (now - last_seen).total_seconds() > min(TOUCH_SECONDS, idle_minutes * 15):  # a quarter of the idle time
        control.write(
            lambda db: db.execute("UPDATE admin_sessions SET last_seen = ? WHERE token_hash = ?", [now_iso(), digest])
        )
    return Session(row[0], row[1], row[2], digest)


def end(control: Database, token: str) -> None:
    control.write(lambda db: db.execute("DELETE FROM admin_sessions WHERE token_hash = ?", [_digest(token)]))


def csrf_ok(session: Session, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(session.csrf.encode(), (presented or "").encode())
