"""Trigger-based change capture for point-in-time recovery (docs/security.md, "Point-in-time recovery and hard deletion").

Every captured table gets three triggers (`_cc_<table>_I|U|D`) that write the row's key and its new
image (JSON) into `_changes` inside the same transaction as the change, so a change and its log
entry commit or roll back together. Before every group commit the database's writer adds one commit
marker row (`op = 'C'`, `ts` = commit time in microseconds): the log is cut at markers, so a restore
never applies half a transaction.

Capture is generic over whatever tables exist; it is (re)installed by `schema.migrate` after every
migration (sqlite-utils `transform()` and table rebuilds drop triggers). Skipped: `app_meta`,
`_changes`, `sqlite_*`, virtual tables (FTS) and their shadow tables. FTS indexes must therefore be
external-content indexes kept in step by triggers on a captured table (the sqlite-utils
`enable_fts(..., create_triggers=True)` kind); `rebuild_fts` refreshes them after a restore.

A row is identified by its declared PRIMARY KEY (an INTEGER PRIMARY KEY is expected; a TEXT or
composite key works too). A table without one falls back to its rowid, which VACUUM may renumber:
`tables_without_integer_pk` names such tables so they can be fixed in a migration.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from appliance.storage.database import Database

log = logging.getLogger("appliance.capture")

CHANGES = "_changes"
CAPTURED_KINDS = ("control", "environment")  # the audit log is outside point-in-time recovery
SKIP_TABLES = frozenset({"app_meta", CHANGES})
TRIGGER_PREFIX = "_cc_"
CHANGES_DDL = """CREATE TABLE IF NOT EXISTS _changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ts INTEGER NOT NULL,        -- microseconds since the epoch (commit time on 'C' markers)
    tbl TEXT NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('I', 'U', 'D', 'C')),
    pk TEXT,                    -- JSON array of the key values
    old_pk TEXT,                -- JSON array of the old key when an UPDATE changed the key
    row TEXT                    -- JSON object of the new row; NULL for deletes and markers
)"""
_TS_SQL = "CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)"

# A change as stored and shipped: (seq, ts, tbl, op, pk, old_pk, row)
Change = tuple[int, int, str, str, str | None, str | None, str | None]

_clock_lock = threading.Lock()
_last_commit_us = 0


def commit_time_us() -> int:
    """Wall-clock microseconds, strictly increasing within this process (an NTP step can't reorder)."""
    global _last_commit_us
    with _clock_lock:
        now = max(time.time_ns() // 1000, _last_commit_us + 1)
        _last_commit_us = now
        return now


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _enc(ref: str, column: str) -> str:
    """A column value as JSON: blobs become {"$hex": ...} (JSON cannot hold bytes)."""
    value = f"{ref}.{q(column)}"
    return f"CASE typeof({value}) WHEN 'blob' THEN json_object('$hex', hex({value})) ELSE {value} END"


def decode(value: Any) -> Any:
    if isinstance(value, dict) and "$hex" in value:
        return bytes.fromhex(value["$hex"])
    return value


@dataclass(frozen=True)
class TableInfo:
    name: str
    columns: list[str]
    key: list[str]  # declared primary-key columns, or ["rowid"]
    integer_pk: bool


def captured_tables(db: sqlite_utils.Database) -> list[TableInfo]:
    """Every ordinary table that change capture covers, with its key columns."""
    out: list[TableInfo] = []
    for schema_name, name, kind, *_ in db.execute("PRAGMA table_list").fetchall():
        if schema_name != "main" or kind != "table":  # skips views, virtual and FTS shadow tables
            continue
        if name.startswith("sqlite_") or name in SKIP_TABLES or name.startswith(TRIGGER_PREFIX):
            continue
        info = db.execute(f"PRAGMA table_info({q(name)})").fetchall()
        columns = [r[1] for r in info]
        keyed = sorted((r[5], r[1], (r[2] or "").upper()) for r in info if r[5])
        key = [k[1] for k in keyed] or ["rowid"]
        integer_pk = len(keyed) == 1 and keyed[0][2] == "INTEGER"
        out.append(TableInfo(name, columns, key, integer_pk))
    return out


def tables_without_integer_pk(db: sqlite_utils.Database) -> list[str]:
    return [t.name for t in captured_tables(db) if not t.integer_pk]


def _row_json(table: TableInfo, ref: str) -> str:
    columns = list(table.columns)
    if table.key == ["rowid"]:
        columns = ["rowid", *columns]
    return "json_object(" + ", ".join(f"{_lit(c)}, {_enc(ref, c)}" for c in columns) + ")"


def _key_json(table: TableInfo, ref: str) -> str:
    return "json_array(" + ", ".join(_enc(ref, c) for c in table.key) + ")"


def trigger_sql(table: TableInfo) -> dict[str, str]:
    t, lit = q(table.name), _lit(table.name)
    new_key, old_key = _key_json(table, "NEW"), _key_json(table, "OLD")
    name = {op: q(f"{TRIGGER_PREFIX}{table.name}_{op}") for op in "IUD"}
    return {
        f"{TRIGGER_PREFIX}{table.name}_I": (
            f"CREATE TRIGGER {name['I']} AFTER INSERT ON {t} BEGIN "
            f"INSERT INTO _changes (ts, tbl, op, pk, row) VALUES "
            f"({_TS_SQL}, {lit}, 'I', {new_key}, {_row_json(table, 'NEW')}); END"
        ),
        f"{TRIGGER_PREFIX}{table.name}_U": (
            f"CREATE TRIGGER {name['U']} AFTER UPDATE ON {t} BEGIN "
            f"INSERT INTO _changes (ts, tbl, op, pk, old_pk, row) VALUES "
            f"({_TS_SQL}, {lit}, 'U', {new_key}, "
            f"CASE WHEN {old_key} IS {new_key} THEN NULL ELSE {old_key} END, {_row_json(table, 'NEW')}); END"
        ),
        f"{TRIGGER_PREFIX}{table.name}_D": (
            f"CREATE TRIGGER {name['D']} AFTER DELETE ON {t} BEGIN "
            f"INSERT INTO _changes (ts, tbl, op, pk) VALUES ({_TS_SQL}, {lit}, 'D', {old_key}); END"
        ),
    }


def install_triggers(db: sqlite_utils.Database) -> list[str]:
    """Create `_changes` and (re)create every capture trigger whose SQL changed. Returns the tables."""
    db.execute(CHANGES_DDL)
    tables = captured_tables(db)
    existing = {
        r[0]: r[1]
        for r in db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE '\\_cc\\_%' ESCAPE '\\'"
        ).fetchall()
    }
    wanted: dict[str, str] = {}
    for table in tables:
        wanted.update(trigger_sql(table))
    for name in existing.keys() - wanted.keys():
        db.execute(f"DROP TRIGGER IF EXISTS {q(name)}")
    for name, sql in wanted.items():
        if existing.get(name) != sql:
            db.execute(f"DROP TRIGGER IF EXISTS {q(name)}")
            db.execute(sql)
    return [t.name for t in tables]


def drop_triggers(db: Any) -> None:
    names = [
        r[0]
        for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '\\_cc\\_%' ESCAPE '\\'"
        ).fetchall()
    ]
    for name in names:
        db.execute(f"DROP TRIGGER IF EXISTS {q(name)}")


def mark_commit(db: sqlite_utils.Database) -> None:
    """Runs inside the writer's transaction, just before COMMIT: close the transaction's changes."""
    row = db.execute("SELECT op FROM _changes ORDER BY seq DESC LIMIT 1").fetchone()
    if row is not None and row[0] != "C":
        db.execute(
            "INSERT INTO _changes (ts, tbl, op) VALUES (?, '', 'C')",
            [commit_time_us()],
        )


def install(database: Database) -> list[str]:
    """Install capture on a database (idempotent) and make its writer mark every commit."""

    def job(db: sqlite_utils.Database) -> tuple[list[str], list[str]]:
        with db.atomic():
            tables = install_triggers(db)
            mark_commit(db)
        return tables, tables_without_integer_pk(db)

    tables, lacking = database.write(job, transactional=False)
    if mark_commit not in database.before_commit:
        database.before_commit.append(mark_commit)
    if lacking:
        log.info("tables without an INTEGER PRIMARY KEY in %s: %s", database.name, ", ".join(lacking))
    return tables


def current_seq(db: Any) -> int:
    row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = '_changes'").fetchone()
    return int(row[0]) if row else 0


# -- replay ---------------------------------------------------------------------------------------
def key_columns(db: Any) -> dict[str, list[str]]:
    return {t.name: t.key for t in captured_tables(db)}


def _where(key: list[str]) -> str:
    return " AND ".join(f"{q(c)} IS ?" for c in key)


def apply_changes(conn: Any, changes: Iterable[Change], keys: dict[str, list[str]]) -> int:
    """Apply data changes (no markers) in order on a connection with capture triggers dropped and
    foreign keys off (REPLACE must not cascade; cascaded changes are in the log themselves)."""
    n = 0
    for _seq, _ts, tbl, op, pk, old_pk, row in changes:
        if op == "C":
            continue
        key = keys.get(tbl)
        if key is None:
            raise ValueError(f"the log names table {tbl!r}, which the restored database does not have")
        t = q(tbl)
        key_values = [decode(v) for v in json.loads(pk or "[]")]
        if op == "D":
            conn.execute(f"DELETE FROM {t} WHERE {_where(key)}", key_values)
            n += 1
            continue
        values = {k: decode(v) for k, v in json.loads(row or "{}").items()}
        if op == "U":
            where_values = [decode(v) for v in json.loads(old_pk)] if old_pk else key_values
            sets = ", ".join(f"{q(c)} = ?" for c in values)
            cursor = conn.execute(
                f"UPDATE {t} SET {sets} WHERE {_where(key)}", [*values.values(), *where_values]
            )
            if cursor.rowcount:
                n += 1
                continue
        cols = ", ".join(q(c) for c in values)
        conn.execute(
            f"INSERT OR REPLACE INTO {t} ({cols}) VALUES ({', '.join('?' * len(values))})",
            list(values.values()),
        )
        n += 1
    return n


def committed(changes: Iterable[Change], until_us: int | None) -> Iterable[list[Change]]:
    """Group changes into transactions (ended by 'C' markers) committed at or before `until_us`.

    Changes not followed by a marker (writes outside the writer's group commit) are applied on
    their own row time."""
    pending: list[Change] = []
    for change in changes:
        if change[3] == "C":
            if until_us is not None and change[1] > until_us:
                return
            if pending:
                yield pending
            pending = []
        else:
            pending.append(change)
    tail = [c for c in pending if until_us is None or c[1] <= until_us]
    if tail:
        yield tail


def rebuild_fts(conn: Any) -> None:
    for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%fts%'"
    ).fetchall():
        try:
            conn.execute(f"INSERT INTO {q(name)} ({q(name)}) VALUES ('rebuild')")
        except Exception as exc:  # contentless indexes cannot be rebuilt
            log.warning("could not rebuild full-text index %s: %s", name, exc)


# -- digests (tests, verify) ----------------------------------------------------------------------
def table_digest(conn: Any, table: str) -> str:
    h = hashlib.sha256()
    cols = [r[1] for r in conn.execute(f"PRAGMA table_info({q(table)})").fetchall()]
    h.update(json.dumps(cols).encode())
    select = ", ".join(f"typeof({q(c)}), {q(c)}" for c in cols)
    for row in conn.execute(f"SELECT {select} FROM {q(table)} ORDER BY rowid"):
        h.update(repr(row).encode())
    return h.hexdigest()


def database_digest(conn: Any, tables: Sequence[str] | None = None) -> dict[str, str]:
    """A digest of every captured table (typeof and value of every column, in rowid order)."""
    names = list(tables) if tables is not None else [t.name for t in captured_tables(conn)]
    return {name: table_digest(conn, name) for name in sorted(names)}
