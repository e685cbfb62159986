"""The library's launch-data store (nonces, states, launch data) in the control database.

`serve --workers N` runs several processes; a login answered by one worker is followed by a launch
that another may receive, so this state lives in the encrypted control database (`lti_cache`),
not in process memory. Keys are the library's random nonces, states and launch ids. Every entry
expires (`LIFETIME`); expired rows are purged on each write, which keeps the table bounded by the
logins of the last `LIFETIME` seconds (and those are bounded by the server's rate limit).
`consume` is the one-time read: a nonce or a state is accepted once, a replay finds nothing.
"""

from __future__ import annotations

import json
import time
from typing import Any

import sqlite_utils
from pylti1p3.launch_data_storage.base import LaunchDataStorage

from appliance.storage.database import Database, fetch_one

LIFETIME = 1800  # seconds: login -> launch takes seconds; a deep-link picker stays open this long


class DbLaunchStorage(LaunchDataStorage[Any]):
    """pylti1p3's `LaunchDataStorage`, backed by `lti_cache`."""

    def __init__(self, control: Database) -> None:
        super().__init__()
        self.control = control

    def get_session_cookie_name(self) -> str | None:
        # keys are random (nonce, state, launch id) and bound by the state cookie; no session id prefix
        return None

    def can_set_keys_expiration(self) -> bool:
        return True

    def get_value(self, key: str) -> Any:
        row = fetch_one(
            self.control.read(),
            "SELECT v FROM lti_cache WHERE k = ? AND expires > ?",
            [self._prepare_key(key), time.time()],
        )
        return json.loads(row["v"]) if row else None

    def set_value(self, key: str, value: Any, exp: int | None = None) -> None:
        now = time.time()
        expires = now + min(exp or LIFETIME, LIFETIME)

        def job(w: sqlite_utils.Database) -> None:
            w.execute("DELETE FROM lti_cache WHERE expires <= ?", [now])
            w.execute(
                "INSERT OR REPLACE INTO lti_cache (k, v, expires) VALUES (?, ?, ?)",
                [self._prepare_key(key), json.dumps(value), expires],
            )

        self.control.write(job)

    def check_value(self, key: str) -> bool:
        return self.get_value(key) is not None

    def consume(self, key: str) -> Any:
        """The value, removed in the same transaction (None if absent, expired or already used)."""
        now = time.time()

        def job(w: sqlite_utils.Database) -> Any:
            row = fetch_one(
                w, "DELETE FROM lti_cache WHERE k = ? RETURNING v, expires", [self._prepare_key(key)]
            )
            if row is None or row["expires"] <= now:
                return None
            return json.loads(row["v"])

        return self.control.write(job)
