"""Identities routes of the Coassemble headless API: clients and users. The rules live in
appliance.learners.identities; deletion is hard deletion (appliance.backup.erasure): the rows are
gone from the live database, its WAL, the PITR log and snapshots, and stay gone after any restore.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import msgspec
import sqlite_utils
from litestar import Controller, Request, delete, get, put
from litestar.params import QueryParameter

from appliance.headless.common import as_str, loose_body, page_window
from appliance.headless.deps import erase_subject, set_target
from appliance.learners import identities
from appliance.storage.database import Database

Metadata = Annotated[dict[str, Any], msgspec.Meta(max_length=100)]


class ClientUpdate(msgspec.Struct):
    metadata: Metadata | None = None


class UserUpdate(msgspec.Struct):
    clientIdentifier: str | None = None
    metadata: Metadata | None = None
    name: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    avatar: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


# -- wire shapes ------------------------------------------------------------------------------------
def client_to_wire(db: sqlite_utils.Database, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "clientIdentifier": row["client_identifier"],
        "userCount": identities.user_count(db, row["client_identifier"]),
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


# -- routes ---------------------------------------------------------------------------------------
class IdentitiesController(Controller):
    tags = ["Identities"]

    @get("/clients", summary="List clients", sync_to_thread=False)
    def list_clients(self, db: Database, page: int = 0, length: int = 100) -> list[dict[str, Any]]:
        limit, offset = page_window(page, length)
        reader = db.read()
        return [client_to_wire(reader, r) for r in identities.list_clients(reader, limit, offset)]

    @get("/client/{client_identifier:str}", summary="Get one client", sync_to_thread=False)
    def get_client(
        self, request: Request[Any, Any, Any], db: Database, client_identifier: str
    ) -> dict[str, Any]:
        set_target(request, "client")
        reader = db.read()
        return client_to_wire(reader, identities.get_client(reader, client_identifier))

    @put("/client/{client_identifier:str}", summary="Update a client's metadata (replaces it)")
    async def update_client(
        self, request: Request[Any, Any, Any], db: Database, client_identifier: str, data: ClientUpdate
    ) -> dict[str, Any]:
        set_target(request, "client")

        def job(w: sqlite_utils.Database) -> dict[str, Any]:
            return client_to_wire(w, identities.update_client(w, client_identifier, data.metadata))

        return await db.awrite(job)

    @delete(
        "/client/{client_identifier:str}", summary="Delete a client and everything it owns", status_code=200
    )
    async def delete_client(
        self, request: Request[Any, Any, Any], db: Database, client_identifier: str
    ) -> dict[str, Any]:
        set_target(request, "client")
        await erase_subject(
            request, "client", client_identifier, lambda w: identities.delete_client_rows(w, client_identifier)
        )
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
        return [user_to_wire(r) for r in identities.list_users(db.read(), client_identifier, limit, offset)]

    @get("/user/{identifier:str}", summary="Get one user", sync_to_thread=False)
    def get_user(self, request: Request[Any, Any, Any], db: Database, identifier: str) -> dict[str, Any]:
        set_target(request, "user")
        return user_to_wire(identities.get_user(db.read(), identifier))

    @put("/user/{identifier:str}", summary="Update a user (metadata replaces)")
    async def update_user(
        self, request: Request[Any, Any, Any], db: Database, identifier: str, data: UserUpdate
    ) -> dict[str, Any]:
        set_target(request, "user")

        def job(w: sqlite_utils.Database) -> dict[str, Any]:
            row = identities.update_user(
                w,
                identifier,
                client_identifier=data.clientIdentifier,
                metadata=data.metadata,
                name=data.name,
                avatar=data.avatar,
            )
            return user_to_wire(row)

        return await db.awrite(job)

    @delete("/user/{identifier:str}", summary="Delete a user", status_code=200)
    async def delete_user(
        self, request: Request[Any, Any, Any], db: Database, identifier: str
    ) -> dict[str, Any]:
        set_target(request, "user")
        values = await loose_body(request)
        action = as_str(values, "action", required=False) or "ignore"
        identities.check_user_action(action)
        reallocate_to = as_str(values, "reallocateTo", required=False)
        await erase_subject(
            request, "user", identifier, lambda w: identities.delete_user_rows(w, identifier, action, reallocate_to)
        )
        return {"message": "Success"}
