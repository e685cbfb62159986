"""Identities (coassemble-api.md §2.4): clients and users.

Clients and users are created implicitly when a partner passes `identifier` / `clientIdentifier`
(embeds, generation, duplication); `ensure_identity` is that one place. Updating metadata replaces
it (no merge). Deleting a client removes every object it owns; deleting a user handles its
courses by `action`: reallocate (to `reallocateTo`), delete, or ignore (the default: leave them).
Deletion is hard deletion (appliance.storage.erasure): the rows are gone from the live database,
its WAL, the PITR log and snapshots, and stay gone after any restore.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import msgspec
import sqlite_utils
from litestar import Controller, Request, delete, get, put
from litestar.params import QueryParameter

from appliance.errors import ApiError, not_found
from appliance.headless.common import as_str, loose_body, page_window
from appliance.headless.deps import erase_subject, set_target
from appliance.security.audit import now_iso
from appliance.storage.database import Database, fetch_all, fetch_one

Metadata = Annotated[dict[str, Any], msgspec.Meta(max_length=100)]
USER_ACTIONS = ("reallocate", "delete", "ignore")


class ClientUpdate(msgspec.Struct):
    metadata: Metadata | None = None


class UserUpdate(msgspec.Struct):
    clientIdentifier: str | None = None
    metadata: Metadata | None = None
    name: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    avatar: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


# -- services -------------------------------------------------------------------------------------
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


def client_to_wire(db: sqlite_utils.Database, row: dict[str, Any]) -> dict[str, Any]:
    count = db.execute("SELECT count(*) FROM users WHERE client_identifier = ?", [row["client_identifier"]])
    return {
        "clientIdentifier": row["client_identifier"],
        "userCount": count.fetchone()[0],
        "metadata": json.loads(row["metadata"]),
        "created": row["created"],
        "updated": row["updated"],
    }


def user_to_wire(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "identifier": row["identifier"],
        "clientIdentifier": row["client_identifier"],
        "name": row["name"],
        "avatar": row["avatar"],
        "email": row["email"],
        "metadata": json.loads(row["metadata"]),
        "testMode": bool(row["test_mode"]),
        "created": row["created"],
        "updated": row["updated"],
    }


def get_client(db: sqlite_utils.Database, client_identifier: str) -> dict[str, Any]:
    row = fetch_one(db, "SELECT * FROM clients WHERE client_identifier = ?", [client_identifier])
    if row is None:
        raise not_found("Client")
    return row


def get_user(db: sqlite_utils.Database, identifier: str) -> dict[str, Any]:
    row = fetch_one(db, "SELECT * FROM users WHERE identifier = ?", [identifier])
    if row is None:
        raise not_found("User")
    return row


def delete_user_rows(
    db: sqlite_utils.Database, identifier: str, action: str, reallocate_to: str | None
) -> None:
    get_user(db, identifier)
    if action == "reallocate":
        if not reallocate_to:
            raise ApiError(422, "reallocateTo is required when action is reallocate")
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


def delete_client_rows(db: sqlite_utils.Database, client_identifier: str) -> None:
    get_client(db, client_identifier)
    db.execute(
        """DELETE FROM webhook_outbox WHERE json_extract(body, '$.data.course.clientIdentifier') = ?
           OR json_extract(body, '$.data.tracking.identifier') IN (SELECT identifier FROM users WHERE client_identifier = ?)""",
        [client_identifier, client_identifier],
    )
    for table in ("trackings", "collection_trackings", "courses", "collections", "users", "allowances"):
        db.execute(f"DELETE FROM {table} WHERE client_identifier = ?", [client_identifier])
    db.execute("DELETE FROM clients WHERE client_identifier = ?", [client_identifier])


# -- routes ---------------------------------------------------------------------------------------
class IdentitiesController(Controller):
    tags = ["Identities"]

    @get("/clients", summary="List clients", sync_to_thread=False)
    def list_clients(self, db: Database, page: int = 0, length: int = 100) -> list[dict[str, Any]]:
        limit, offset = page_window(page, length)
        reader = db.read()
        rows = fetch_all(reader, "SELECT * FROM clients ORDER BY id LIMIT ? OFFSET ?", [limit, offset])
        return [client_to_wire(reader, r) for r in rows]

    @get("/client/{client_identifier:str}", summary="Get one client", sync_to_thread=False)
    def get_client(
        self, request: Request[Any, Any, Any], db: Database, client_identifier: str
    ) -> dict[str, Any]:
        set_target(request, "client")
        reader = db.read()
        return client_to_wire(reader, get_client(reader, client_identifier))

    @put("/client/{client_identifier:str}", summary="Update a client's metadata (replaces it)")
    async def update_client(
        self, request: Request[Any, Any, Any], db: Database, client_identifier: str, data: ClientUpdate
    ) -> dict[str, Any]:
        set_target(request, "client")

        def job(w: sqlite_utils.Database) -> dict[str, Any]:
            get_client(w, client_identifier)
            if data.metadata is not None:
                w.execute(
                    "UPDATE clients SET metadata = ?, updated = ? WHERE client_identifier = ?",
                    [json.dumps(data.metadata), now_iso(), client_identifier],
                )
            return client_to_wire(w, get_client(w, client_identifier))

        return await db.awrite(job)

    @delete(
        "/client/{client_identifier:str}", summary="Delete a client and everything it owns", status_code=200
    )
    async def delete_client(
        self, request: Request[Any, Any, Any], db: Database, client_identifier: str
    ) -> dict[str, Any]:
        set_target(request, "client")
        await erase_subject(request, "client", client_identifier, lambda w: delete_client_rows(w, client_identifier))
        return {"message": "All related objects and creators deleted"}

    @get("/users", summary="List users", sync_to_thread=False)
    def list_users(
        self,
        db: Database,
        client_identifier: Annotated[str | None, QueryParameter(name="clientIdentifier")] = None,
        page: int = 0,
        length: int = 100,
    ) -> list[dict[str, Any]]:
        limit, offset = page_window(page, length)
        where, params = (
            ("WHERE client_identifier = ?", [client_identifier]) if client_identifier else ("", [])
        )
        rows = fetch_all(
            db.read(), f"SELECT * FROM users {where} ORDER BY id LIMIT ? OFFSET ?", [*params, limit, offset]
        )
        return [user_to_wire(r) for r in rows]

    @get("/user/{identifier:str}", summary="Get one user", sync_to_thread=False)
    def get_user(self, request: Request[Any, Any, Any], db: Database, identifier: str) -> dict[str, Any]:
        set_target(request, "user")
        return user_to_wire(get_user(db.read(), identifier))

    @put("/user/{identifier:str}", summary="Update a user (metadata replaces)")
    async def update_user(
        self, request: Request[Any, Any, Any], db: Database, identifier: str, data: UserUpdate
    ) -> dict[str, Any]:
        set_target(request, "user")

        def job(w: sqlite_utils.Database) -> dict[str, Any]:
            row = get_user(w, identifier)
            if data.clientIdentifier is not None:
                ensure_identity(w, None, data.clientIdentifier)
            w.execute(
                "UPDATE users SET client_identifier = ?, metadata = ?, name = ?, avatar = ?, updated = ? WHERE id = ?",
                [
                    data.clientIdentifier if data.clientIdentifier is not None else row["client_identifier"],
                    json.dumps(data.metadata) if data.metadata is not None else row["metadata"],
                    data.name if data.name is not None else row["name"],
                    data.avatar if data.avatar is not None else row["avatar"],
                    now_iso(),
                    row["id"],
                ],
            )
            return user_to_wire(get_user(w, identifier))

        return await db.awrite(job)

    @delete("/user/{identifier:str}", summary="Delete a user", status_code=200)
    async def delete_user(
        self, request: Request[Any, Any, Any], db: Database, identifier: str
    ) -> dict[str, Any]:
        set_target(request, "user")
        values = await loose_body(request)
        action = as_str(values, "action", required=False) or "ignore"
        if action not in USER_ACTIONS:
            raise ApiError(422, f"action must be one of {', '.join(USER_ACTIONS)}")
        reallocate_to = as_str(values, "reallocateTo", required=False)
        await erase_subject(request, "user", identifier, lambda w: delete_user_rows(w, identifier, action, reallocate_to))
        return {"message": "Success"}
