"""Clients and users, as the Coassemble headless API names them.

Clients and users are created implicitly when a partner passes `identifier` / `clientIdentifier`
(embeds, generation, duplication); `ensure_identity` is that one place. Updating metadata replaces
it (no merge). Deleting a client removes every object it owns; deleting a user handles its
courses by `action`: reallocate (to `reallocateTo`), delete, or ignore (the default: leave them).
The `delete_*_rows` functions are the row part of hard deletion: appliance.backup.erasure runs
them and then purges the WAL, the PITR log and snapshots.
"""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from appliance.errors import Invalid, not_found
from appliance.security.audit import now_iso
from appliance.storage.database import fetch_all, fetch_one

USER_ACTIONS = ("reallocate", "delete", "ignore")


def ensure_identity(
    db: sqlite_utils.Database, identifier: str | None, client_identifier: str | None, **profile: Any
) -> None:
    """Create the client and user rows a partner's identifiers imply (inside a writer job)."""
    now = now_iso()
    if client_identifier:
        db.execute(
            "INSERT INTO clients (client_identifier, created, updated) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            [client_identifier, now, now],
        )
    if identifier:
        db.execute(
            """INSERT INTO users (identifier, client_identifier, name, avatar, email, created, updated)
               VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(identifier) DO UPDATE SET
               name = coalesce(excluded.name, name), avatar = coalesce(excluded.avatar, avatar),
               email = coalesce(excluded.email, email),
               client_identifier = coalesce(client_identifier, excluded.client_identifier)""",
            [
                identifier,
                client_identifier,
                profile.get("name"),
                profile.get("avatar"),
                profile.get("email"),
                now,
                now,
            ],
        )


# -- clients ----------------------------------------------------------------------------------------
def get_client(db: sqlite_utils.Database, client_identifier: str) -> dict[str, Any]:
    row = fetch_one(db, "SELECT * FROM clients WHERE client_identifier = ?", [client_identifier])
    if row is None:
        raise not_found("Client")
    return row


def user_count(db: sqlite_utils.Database, client_identifier: str) -> int:
    count: int = db.execute(
        "SELECT count(*) FROM users WHERE client_identifier = ?", [client_identifier]
    ).fetchone()[0]
    return count


def list_clients(db: sqlite_utils.Database, limit: int, offset: int) -> list[dict[str, Any]]:
    return fetch_all(db, "SELECT * FROM clients ORDER BY id LIMIT ? OFFSET ?", [limit, offset])


def update_client(
    db: sqlite_utils.Database, client_identifier: str, metadata: dict[str, Any] | None
) -> dict[str, Any]:
    """Replace a client's metadata (None leaves it); returns the fresh row."""
    get_client(db, client_identifier)
    if metadata is not None:
        db.execute(
            "UPDATE clients SET metadata = ?, updated = ? WHERE client_identifier = ?",
            [json.dumps(metadata), now_iso(), client_identifier],
        )
    return get_client(db, client_identifier)


def delete_client_rows(db: sqlite_utils.Database, client_identifier: str) -> None:
    get_client(db, client_identifier)
    db.execute(
        """DELETE FROM webhook_outbox WHERE json_extract(body, '$.data.course.clientIdentifier') = ?
           OR json_extract(body, '$.data.tracking.identifier') IN (SELECT identifier FROM users WHERE client_identifier = ?)""",
        [client_identifier, client_identifier],
    )
    db.execute(
        "DELETE FROM xapi_outbox WHERE identifier IN (SELECT identifier FROM users WHERE client_identifier = ?)"
        " OR identifier IN (SELECT identifier FROM trackings WHERE client_identifier = ?)",
        [client_identifier, client_identifier],
    )
    links = "SELECT id FROM lti_grade_links WHERE identifier IN (SELECT identifier FROM users WHERE client_identifier = ?)"
    db.execute(f"DELETE FROM lti_outbox WHERE link_id IN ({links})", [client_identifier])
    db.execute(f"DELETE FROM lti_grade_links WHERE id IN ({links})", [client_identifier])
    for table in ("trackings", "collection_trackings", "courses", "collections", "users", "allowances"):
        db.execute(f"DELETE FROM {table} WHERE client_identifier = ?", [client_identifier])
    db.execute("DELETE FROM clients WHERE client_identifier = ?", [client_identifier])


# -- users ------------------------------------------------------------------------------------------
def get_user(db: sqlite_utils.Database, identifier: str) -> dict[str, Any]:
    row = find_user(db, identifier)
    if row is None:
        raise not_found("User")
    return row


def find_user(db: sqlite_utils.Database, identifier: str) -> dict[str, Any] | None:
    return fetch_one(db, "SELECT * FROM users WHERE identifier = ?", [identifier])


def list_users(
    db: sqlite_utils.Database, client_identifier: str | None, limit: int, offset: int
) -> list[dict[str, Any]]:
    where, params = ("WHERE client_identifier = ?", [client_identifier]) if client_identifier else ("", [])
    return fetch_all(db, f"SELECT * FROM users {where} ORDER BY id LIMIT ? OFFSET ?", [*params, limit, offset])


def update_user(
    db: sqlite_utils.Database,
    identifier: str,
    *,
    client_identifier: str | None = None,
    metadata: dict[str, Any] | None = None,
    name: str | None = None,
    avatar: str | None = None,
) -> dict[str, Any]:
    """Change what is given (metadata replaces); a new client is created. Returns the fresh row."""
    row = get_user(db, identifier)
    if client_identifier is not None:
        ensure_identity(db, None, client_identifier)
    db.execute(
        "UPDATE users SET client_identifier = ?, metadata = ?, name = ?, avatar = ?, updated = ? WHERE id = ?",
        [
            client_identifier if client_identifier is not None else row["client_identifier"],
            json.dumps(metadata) if metadata is not None else row["metadata"],
            name if name is not None else row["name"],
            avatar if avatar is not None else row["avatar"],
            now_iso(),
            row["id"],
        ],
    )
    return get_user(db, identifier)


def check_user_action(action: str) -> None:
    """Refuse a deletion request before anything is erased."""
    if action not in USER_ACTIONS:
        raise Invalid(f"action must be one of {', '.join(USER_ACTIONS)}")


def delete_user_rows(
    db: sqlite_utils.Database, identifier: str, action: str, reallocate_to: str | None
) -> None:
    check_user_action(action)
    get_user(db, identifier)
    if action == "reallocate":
        if not reallocate_to:
            raise Invalid("reallocateTo is required when action is reallocate")
        target = get_user(db, reallocate_to)
        db.execute(
            "UPDATE courses SET identifier = ?, client_identifier = ?, updated = ? WHERE identifier = ?",
            [target["identifier"], target["client_identifier"], now_iso(), identifier],
        )
        db.execute("UPDATE collections SET identifier = ? WHERE identifier = ?", [reallocate_to, identifier])
    elif action == "delete":
        db.execute("DELETE FROM courses WHERE identifier = ?", [identifier])
        db.execute("DELETE FROM collections WHERE identifier = ?", [identifier])
    db.execute("DELETE FROM trackings WHERE identifier = ?", [identifier])
    db.execute("DELETE FROM collection_trackings WHERE identifier = ?", [identifier])
    db.execute("DELETE FROM users WHERE identifier = ?", [identifier])
    db.execute("DELETE FROM webhook_outbox WHERE json_extract(body, '$.data.tracking.identifier') = ?", [identifier])
    db.execute("DELETE FROM xapi_outbox WHERE identifier = ?", [identifier])  # pending ones are never sent
    # LTI grade passback (appliance.lti.grades): where the learner's score goes, and scores not yet sent
    db.execute("DELETE FROM lti_outbox WHERE link_id IN (SELECT id FROM lti_grade_links WHERE identifier = ?)", [identifier])
    db.execute("DELETE FROM lti_grade_links WHERE identifier = ?", [identifier])
