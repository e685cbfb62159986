"""The cookie-less embed session (docs/embeds.md, "The session").

The page exchanges its signed-URL token for a session JWT (`embed-session+jwt`, held in memory,
sent as `Authorization: Bearer`) and an opaque refresh token. Each refresh consumes the refresh
token and returns a new pair; presenting a consumed refresh token again is treated as theft and
revokes the whole family (the session row), which also stops its current JWT at the next call.

Refresh tokens look like `rt1.<workspace>.<environment>.<secret>`: the prefix only routes the
lookup to the right encrypted database; the secret is 32 random bytes and only its SHA-256 is
stored. Nothing here ever sets a cookie.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from appliance.embeds.tokens import SESSION_TYP, URL_TYP, Signer, TokenInvalid
from appliance.runtime import Runtime
from appliance.security.audit import now_iso
from appliance.storage.database import Database, StorageError, fetch_one, last_id

REFRESH_PREFIX = "rt1"
SESSION_CLAIMS = (
    "workspace",
    "environment",
    "kind",
    "action",
    "course",
    "collection",
    "identifier",
    "clientIdentifier",
    "name",
    "options",
    "themeId",
)


class SessionInvalid(Exception):
    """The session cannot continue (expired, revoked, reused refresh token, forged token)."""


@dataclass(frozen=True)
class EmbedSession:
    claims: dict[str, Any]
    session_id: int
    family: str
    db: Database

    @property
    def workspace_id(self) -> int:
        return int(self.claims["workspace"])

    @property
    def environment(self) -> str:
        return str(self.claims["environment"])

    @property
    def kind(self) -> str:
        return str(self.claims["kind"])

    @property
    def action(self) -> str:
        return str(self.claims["action"])

    @property
    def options(self) -> dict[str, Any]:
        options = self.claims.get("options")
        return options if isinstance(options, dict) else {}


def signer_of(runtime: Runtime) -> Signer:
    """One signer per runtime (it caches the unwrapped keys)."""
    signer = getattr(runtime, "_embed_signer", None)
    if not isinstance(signer, Signer):
        signer = Signer(runtime.keyring)
        runtime._embed_signer = signer  # type: ignore[attr-defined]
    return signer


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _environment(runtime: Runtime, workspace_id: int, environment: str) -> Database:
    try:
        return runtime.environment(workspace_id, environment)
    except StorageError:
        raise SessionInvalid("no such workspace environment") from None


def _new_refresh(db: sqlite_utils.Database, session_id: int, workspace: int, environment: str) -> str:
    secret = secrets.token_urlsafe(32)
    token = f"{REFRESH_PREFIX}.{workspace}.{environment}.{secret}"
    row = fetch_one(db, "SELECT expires FROM embed_sessions WHERE id = ?", [session_id])
    assert row is not None
    family_end = datetime.fromisoformat(row["expires"].replace("Z", "+00:00")).timestamp()
    db.execute(
        "INSERT INTO embed_refresh_tokens (session_id, token_hash, created, expires) VALUES (?, ?, ?, ?)",
        [session_id, _hash(secret), now_iso(), family_end],
    )
    return token


def _issue(runtime: Runtime, claims: dict[str, Any], family: str, refresh: str) -> dict[str, Any]:
    lifetime = runtime.settings.embeds.session_seconds
    session_claims = {k: claims.get(k) for k in SESSION_CLAIMS} | {"sid": family}
    token, _ = signer_of(runtime).sign(SESSION_TYP, session_claims, lifetime)
    return {
        "session": token,
        "refreshToken": refresh,
        "expiresIn": lifetime,
        # the page refreshes at 80 % of the lifetime (at least 5 s before the end)
        "refreshIn": max(1, min(int(lifetime * 0.8), lifetime - 5)),
        "claims": session_claims,
    }


def exchange(runtime: Runtime, url_token: str) -> dict[str, Any]:
    """A signed-URL token becomes a new session family (a reload of the iframe makes another)."""
    try:
        claims = signer_of(runtime).verify(url_token, URL_TYP)
    except TokenInvalid as exc:
        raise SessionInvalid(str(exc)) from None
    db = _environment(runtime, int(claims["workspace"]), str(claims["environment"]))
    family = secrets.token_urlsafe(18)
    family_seconds = runtime.settings.embeds.refresh_seconds
    expires = datetime.fromtimestamp(time.time() + family_seconds, UTC).isoformat().replace("+00:00", "Z")

    def job(w: sqlite_utils.Database) -> str:
        cursor = w.execute(
            """INSERT INTO embed_sessions (family, url_jti, kind, action, course_id, collection_id, identifier,
               client_identifier, display, created, expires, last_seen)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [
                family,
                claims["jti"],
                claims["kind"],
                claims["action"],
                claims.get("course"),
                claims.get("collection"),
                claims.get("identifier"),
                claims.get("clientIdentifier"),
                json.dumps({k: claims.get(k) for k in ("name", "options", "themeId")}),
                now_iso(),
                expires,
                time.time(),
            ],
        )
        return _new_refresh(w, last_id(cursor), int(claims["workspace"]), str(claims["environment"]))

    refresh = db.write(job)
    return _issue(runtime, claims, family, refresh)


def _parse_refresh(token: str) -> tuple[int, str, str]:
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 4 or parts[0] != REFRESH_PREFIX or not parts[1].isdigit() or len(parts[3]) < 40:
        raise SessionInvalid("malformed refresh token")
    if parts[2] not in ("test", "production"):
        raise SessionInvalid("malformed refresh token")
    return int(parts[1]), parts[2], parts[3]


def refresh(runtime: Runtime, token: str) -> dict[str, Any]:
    """Rotate: consume the refresh token, return a new session JWT and refresh token.
    A consumed token presented again revokes the family (reuse detection)."""
    workspace, environment, secret = _parse_refresh(token)
    db = _environment(runtime, workspace, environment)

    def job(w: sqlite_utils.Database) -> tuple[str, dict[str, Any] | None, str]:
        row = fetch_one(
            w,
            """SELECT r.id AS rid, r.used, r.expires AS rexpires, s.* FROM embed_refresh_tokens r
               JOIN embed_sessions s ON s.id = r.session_id WHERE r.token_hash = ?""",
            [_hash(secret)],
        )
        if row is None:
            return "unknown", None, ""
        if row["revoked"] is not None:
            return "revoked", None, ""
        if row["used"] is not None:
            w.execute(
                "UPDATE embed_sessions SET revoked = ?, revoked_reason = 'refresh token reused' WHERE id = ?",
                [now_iso(), row["id"]],
            )
            return "reused", None, ""
        if row["rexpires"] <= time.time():
            return "expired", None, ""
        w.execute("UPDATE embed_refresh_tokens SET used = ? WHERE id = ?", [now_iso(), row["rid"]])
        return "ok", row, _new_refresh(w, int(row["id"]), workspace, environment)

    outcome, row, new_token = db.write(job)
    if outcome != "ok" or row is None:
        raise SessionInvalid(f"refresh refused: {outcome}")
    # the session claims come from the stored session, never from the caller
    claims = {
        "workspace": workspace,
        "environment": environment,
        "kind": row["kind"],
        "action": row["action"],
        "course": row["course_id"],
        "collection": row["collection_id"],
        "identifier": row["identifier"],
        "clientIdentifier": row["client_identifier"],
        **json.loads(row["display"]),
    }
    return _issue(runtime, claims, str(row["family"]), new_token)


def revoke(runtime: Runtime, session: EmbedSession, reason: str) -> None:
    session.db.write(
        lambda w: w.execute(
            "UPDATE embed_sessions SET revoked = coalesce(revoked, ?), revoked_reason = ? WHERE id = ?",
            [now_iso(), reason, session.session_id],
        )
    )


def authenticate(runtime: Runtime, bearer: str) -> EmbedSession:
    """The live session behind a Bearer JWT; SessionInvalid for anything else."""
    signer = signer_of(runtime)
    try:
        claims = signer.verify(bearer, SESSION_TYP)
    except TokenInvalid as exc:
        raise SessionInvalid(str(exc)) from None
    db = _environment(runtime, int(claims["workspace"]), str(claims["environment"]))
    row = fetch_one(
        db.read(),
        "SELECT id, revoked, kind, action FROM embed_sessions WHERE family = ?",
        [claims.get("sid")],
    )
    if row is None or row["revoked"] is not None:
        raise SessionInvalid("session revoked or unknown")
    if row["kind"] != claims["kind"] or row["action"] != claims["action"]:
        raise SessionInvalid("claims do not match the session")
    return EmbedSession(claims=claims, session_id=int(row["id"]), family=str(claims["sid"]), db=db)


def elapsed_seconds(w: sqlite_utils.Database, session: EmbedSession, claimed: Any) -> int:
    """Time spent since the last tracked call, as the page reports it, capped by the server's clock."""
    row = fetch_one(w, "SELECT last_seen FROM embed_sessions WHERE id = ?", [session.session_id])
    now = time.time()
    ceiling = max(0, int(now - (row["last_seen"] if row else now)) + 2)
    try:
        value = int(claimed or 0)
    except (TypeError, ValueError):
        value = 0
    w.execute("UPDATE embed_sessions SET last_seen = ? WHERE id = ?", [now, session.session_id])
    return max(0, min(value, ceiling, 3600))
