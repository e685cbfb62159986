"""The erasure ledger: which rows were hard-deleted, so that no restore brings them back.

Entries live in the key store (`keystore.db`), which is outside point-in-time recovery and never
rolled back. An entry holds ids only (table -> row keys) and the subject as a keyed hash.
"""

from __future__ import annotations

import json
from typing import Any

from appliance.backup.format import iso, now_us
from appliance.storage import capture
from appliance.storage.database import fetch_all
from appliance.storage.objects import KeyStore

LedgerRows = dict[str, list[str]]  # table -> [key JSON, ...]


def record(
    store: KeyStore,
    workspace_id: int,
    environment: str,
    database_name: str,
    subject_kind: str,
    subject: str,
    rows: LedgerRows,
) -> int:
    """Write one entry; returns its id."""
    return store.database.write(
        lambda db: int(
            db.execute(
                "INSERT INTO erasures (time, workspace_id, environment, database, subject_kind, subject, rows) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [iso(now_us()), workspace_id, environment, database_name, subject_kind, subject, json.dumps(rows)],
            ).lastrowid
            or 0
        )
    )


def ledger_rows(store: KeyStore, database_name: str) -> list[LedgerRows]:
    """Every ledger entry for one database, oldest first (what a restore re-applies)."""
    rows = (
        store.database.read()
        .execute("SELECT rows FROM erasures WHERE database = ? ORDER BY id", [database_name])
        .fetchall()
    )
    return [json.loads(r[0]) for r in rows]


def ledger(store: KeyStore) -> list[dict[str, Any]]:
    return fetch_all(
        store.database.read(),
        "SELECT id, time, workspace_id, environment, database, subject_kind, subject, rows FROM erasures ORDER BY id",
    )


def apply_ledger(conn: Any, entries: list[LedgerRows]) -> int:
    """Delete every row the erasure ledger names (idempotent), and keep its ids from being reused."""
    keys = capture.key_columns(conn)
    n = 0
    for rows in entries:
        for table, pks in rows.items():
            key = keys.get(table)
            if key is None:
                continue
            where = " AND ".join(f"{capture.q(c)} IS ?" for c in key)
            for pk in pks:
                values = [capture.decode(v) for v in json.loads(pk)]
                n += conn.execute(f"DELETE FROM {capture.q(table)} WHERE {where}", values).rowcount
                if len(values) == 1 and isinstance(values[0], int):
                    conn.execute(
                        "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?", [values[0], table]
                    )
    return n
