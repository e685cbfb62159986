"""Rows the backup tests write and the digests they compare."""

from __future__ import annotations

from typing import Any

from appliance.runtime import Runtime
from appliance.storage import capture


def theme(db: Any, name: str, blob_ish: str = "{}") -> int:
    cursor = db.execute(
        "INSERT INTO themes (name, colours, created, updated) VALUES (?, ?, 'c', 'u')", [name, blob_ish]
    )
    return int(cursor.lastrowid)


def digest(rt: Runtime, ws: int) -> dict[str, str]:
    return capture.database_digest(rt.environment(ws, "test").read())
