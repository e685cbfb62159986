"""API-key authentication paid once per key, with revocation seen on the very next request.

`service.authenticate` and `service.get_workspace` cost two control-database queries and a JSON
decode per headless request (docs/performance.md). `KeyCache` keeps what they answered for a key,
and throws everything away as soon as the control database changed: SQLite's `PRAGMA data_version`
on the reading connection changes whenever any other connection committed to the file, whether
this process's writer thread, the CLI (`appliance key revoke`, `workspace entitlement`) or another
server worker (`appliance serve --workers N`). The pragma reads the WAL index in shared memory: no
page is read or decrypted, so the check is cheap enough for every request.

The version is read before the lookup it guards: a revocation that commits in between is either
seen by the lookup itself or changes the version the next request reads, never neither.
"""

from __future__ import annotations

import hmac
from typing import Any

from appliance.security import apikeys
from appliance.storage.database import Database
from appliance.workspaces import service
from appliance.workspaces.service import Principal

MAX_ENTRIES = 10_000  # keys are few; a bound so the cache never grows with traffic


class KeyCache:
    """Verified keys (by keyed hash, never the secret itself) and their workspaces' entitlements."""

    def __init__(self, control: Database, pepper: bytes) -> None:
        self._control = control
        self._pepper = pepper
        self._conn: Any = None
        self._version: int | None = None
        self._principals: dict[str, Principal] = {}
        self._entitlements: dict[int, dict[str, bool]] = {}

    def _fresh(self) -> None:
        """Empty the cache if the control database changed since it was filled."""
        conn = self._control.read().conn
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if conn is not self._conn or version != self._version:
            # data_version compares only within one connection (a reader reopened after a rekey,
            # or another thread's reader, starts its own count)
            self._principals.clear()
            self._entitlements.clear()
            self._conn, self._version = conn, version

    def authenticate(self, presented: apikeys.PresentedKey) -> Principal | None:
        """What `service.authenticate` answers, from the cache while nothing has changed."""
        self._fresh()
        digest = hmac.new(self._pepper, presented.secret.encode(), "sha256").hexdigest()
        principal = self._principals.get(digest)
        if principal is None:
            principal = service.authenticate(self._control, self._pepper, presented)
            if principal is None:
                return None  # failures are not cached: a new key works at once, and guessing fills nothing
            if len(self._principals) >= MAX_ENTRIES:
                self._principals.clear()
            self._principals[digest] = principal
        if principal.workspace_id != presented.workspace_id:
            return None
        return principal

    def entitlements(self, workspace_id: int) -> dict[str, bool]:
        """The workspace's entitlement flags (call after `authenticate`, which checked freshness)."""
        flags = self._entitlements.get(workspace_id)
        if flags is None:
            flags = service.get_workspace(self._control, workspace_id)["entitlements"]
            self._entitlements[workspace_id] = flags
        return flags
