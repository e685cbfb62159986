"""Workspace, environment and API-key operations shared by the CLI and the server.

The control database holds workspaces and API-key hashes. Each workspace environment is its own
encrypted database with its own key (`ws/<id>/<env>` in the keyring), so a production key can
never read test data: the two are different files under different keys.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from appliance.security import apikeys
from appliance.security.audit import now_iso
from appliance.storage.database import Database, fetch_all, last_id

ENVIRONMENTS = ("test", "production")
ENTITLEMENTS = (
    "api",
    "api_authoring",
    "api_advanced",
    "translations",
    "narrations",
    "brand_kit",
    "analytics",
    "scorm",
)


class NotFound(Exception):
    pass


@dataclass(frozen=True)
class Principal:
    """Who is calling: a verified API key, bound to one workspace and one environment."""

    workspace_id: int
    environment: str
    key_id: str

    @property
    def actor(self) -> str:
        return f"apikey:{self.key_id}"


def environment_key_name(workspace_id: int, environment: str) -> str:
    return f"ws/{workspace_id}/{environment}"


def create_workspace_row(control: Database, name: str) -> int:
    def job(db: sqlite_utils.Database) -> int:
        cursor = db.execute(
            "INSERT INTO workspaces (name, created, entitlements, allowed_origins) VALUES (?, ?, ?, ?)",
            [
                name,
                now_iso(),
                json.dumps(dict.fromkeys(ENTITLEMENTS, True)),
                json.dumps({"test": [], "production": []}),
            ],
        )
        return last_id(cursor)

    return control.write(job)


def get_workspace(control: Database, workspace_id: int) -> dict[str, Any]:
    row = (
        control.read()
        .execute(
            "SELECT id, name, created, entitlements, allowed_origins FROM workspaces WHERE id = ?",
            [workspace_id],
        )
        .fetchone()
    )
    if row is None:
        raise NotFound(f"workspace {workspace_id} does not exist")
    return {
        "id": row[0],
        "name": row[1],
        "created": row[2],
        "entitlements": json.loads(row[3]),
        "allowed_origins": json.loads(row[4]),
    }


def list_workspaces(control: Database) -> list[dict[str, Any]]:
    ids = [r[0] for r in control.read().execute("SELECT id FROM workspaces ORDER BY id").fetchall()]
    return [get_workspace(control, i) for i in ids]


def set_entitlement(control: Database, workspace_id: int, name: str, enabled: bool) -> None:
    if name not in ENTITLEMENTS:
        raise ValueError(f"unknown entitlement {name!r}; known: {', '.join(ENTITLEMENTS)}")

    def job(db: sqlite_utils.Database) -> None:
        row = db.execute("SELECT entitlements FROM workspaces WHERE id = ?", [workspace_id]).fetchone()
        if row is None:
            raise NotFound(f"workspace {workspace_id} does not exist")
        flags = json.loads(row[0])
        flags[name] = enabled
        db.execute("UPDATE workspaces SET entitlements = ? WHERE id = ?", [json.dumps(flags), workspace_id])

    control.write(job)


def create_api_key(control: Database, pepper: bytes, workspace_id: int, mode: str) -> tuple[str, str]:
    """Create a key; return (key id, the whole Authorization value). The value is never stored."""
    if mode not in apikeys.MODES:
        raise ValueError("mode must be test or production")
    get_workspace(control, workspace_id)
    secret = apikeys.new_secret()
    key_id = apikeys.new_key_id()
    digest = hmac.new(pepper, secret.encode(), "sha256").hexdigest()

    def job(db: sqlite_utils.Database) -> None:
        db.execute(
            "INSERT INTO api_keys (key_id, workspace_id, mode, hash, hint, created) VALUES (?, ?, ?, ?, ?, ?)",
            [key_id, workspace_id, mode, digest, secret[-4:], now_iso()],
        )

    control.write(job)
    return key_id, apikeys.header_value(workspace_id, secret)


def list_api_keys(control: Database, workspace_id: int | None = None) -> list[dict[str, Any]]:
    sql = "SELECT key_id, workspace_id, mode, hint, created, revoked FROM api_keys"
    params: list[Any] = []
    if workspace_id is not None:
        sql += " WHERE workspace_id = ?"
        params.append(workspace_id)
    return fetch_all(control.read(), sql + " ORDER BY id", params)


def revoke_api_key(control: Database, key_id: str) -> None:
    def job(db: sqlite_utils.Database) -> None:
        cursor = db.execute(
            "UPDATE api_keys SET revoked = ? WHERE key_id = ? AND revoked IS NULL", [now_iso(), key_id]
        )
        if cursor.rowcount == 0:
            raise NotFound(f"no active key {key_id}")

    control.write(job)


def authenticate(control: Database, pepper: bytes, presented: apikeys.PresentedKey) -> Principal | None:
    """Look the key up by its keyed hash; None for unknown, revoked or other-workspace keys."""
    digest = hmac.new(pepper, presented.secret.encode(), "sha256").hexdigest()
    row = (
        control.read()
        .execute(
            "SELECT key_id, workspace_id, mode, hash FROM api_keys WHERE hash = ? AND revoked IS NULL",
            [digest],
        )
        .fetchone()
    )
    if row is None or row[1] != presented.workspace_id or not hmac.compare_digest(row[3], digest):
        return None
    return Principal(workspace_id=row[1], environment=row[2], key_id=row[0])
