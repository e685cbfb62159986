"""Every table of every database, as numbered migrations.

Three kinds of database: `control` (workspaces, API keys, settings), `audit` (the hash-chained
audit log, outside point-in-time recovery) and `environment` (one per workspace and environment:
courses and everything partners create). A migration runs once, in its own transaction, and bumps
`PRAGMA user_version`; never edit a released migration, append a new one.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

from appliance.storage.database import Database, StorageError

Migration = Callable[[sqlite_utils.Database], None]


def _meta(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE app_meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)")


def _control_v1(db: sqlite_utils.Database) -> None:
    _meta(db)
    db.execute(
        """CREATE TABLE workspaces (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL,
            created TEXT NOT NULL,
            entitlements TEXT NOT NULL,      -- JSON object: name -> bool
            allowed_origins TEXT NOT NULL    -- JSON object: env -> [origin, ...]
        )"""
    )
    db.execute(
        """CREATE TABLE api_keys (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            key_id TEXT NOT NULL UNIQUE,     -- public handle for list/revoke and the audit log
            workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
            mode TEXT NOT NULL CHECK (mode IN ('test', 'production')),
            hash TEXT NOT NULL UNIQUE,       -- HMAC-SHA256 of the key under the keyring's pepper
            hint TEXT NOT NULL,              -- last four characters, for humans
            created TEXT NOT NULL,
            revoked TEXT
        )"""
    )
    db.execute("CREATE TABLE settings (k TEXT PRIMARY KEY, v TEXT NOT NULL)")


def _audit_v1(db: sqlite_utils.Database) -> None:
    _meta(db)
    db.execute(
        """CREATE TABLE audit (
            seq INTEGER PRIMARY KEY,
            time TEXT NOT NULL,
            actor TEXT NOT NULL,
            workspace_id INTEGER,
            environment TEXT,
            method TEXT NOT NULL,
            route TEXT NOT NULL,
            status INTEGER NOT NULL,
            target TEXT,
            request_id TEXT NOT NULL,
            client TEXT,
            user_agent TEXT,
            duration_ms REAL,
            prev TEXT NOT NULL,
            hash TEXT NOT NULL
        )"""
    )


def _environment_v1(db: sqlite_utils.Database) -> None:
    _meta(db)
    db.execute(
        """CREATE TABLE themes (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL,
            preset TEXT,
            font TEXT,
            logo TEXT NOT NULL DEFAULT '[]',
            colours TEXT NOT NULL,           -- JSON {standard:{...}, cover:{...}}
            created TEXT NOT NULL,
            updated TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE courses (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            key TEXT NOT NULL UNIQUE,
            title TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            identifier TEXT,
            client_identifier TEXT,
            image TEXT,
            thumbnail TEXT,
            active INTEGER NOT NULL DEFAULT 1,
            identified INTEGER NOT NULL DEFAULT 0,
            private INTEGER NOT NULL DEFAULT 0,
            type TEXT NOT NULL DEFAULT 'standard',
            legacy INTEGER NOT NULL DEFAULT 0,
            theme_id INTEGER REFERENCES themes(id) ON DELETE SET NULL,
            revision INTEGER NOT NULL DEFAULT 0,
            draft TEXT NOT NULL,             -- JSON content: {start, finish, screens}
            published_content TEXT,          -- JSON content of the last published revision
            published TEXT,
            created TEXT NOT NULL,
            updated TEXT NOT NULL,
            deleted TEXT
        )"""
    )
    db.execute("CREATE INDEX courses_owner ON courses(client_identifier, identifier)")


MIGRATIONS: dict[str, list[Migration]] = {
    "control": [_control_v1],
    "audit": [_audit_v1],
    "environment": [_environment_v1],
}


def migrate(database: Database, kind: str, meta: dict[str, str]) -> int:
    """Bring a database to the newest schema of its kind and check (or stamp) its identity."""
    steps = MIGRATIONS[kind]

    def run(db: sqlite_utils.Database) -> int:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > len(steps):
            raise StorageError(f"{database.name} has schema {version}, newer than this release knows")
        for number in range(version + 1, len(steps) + 1):
            with db.atomic():
                steps[number - 1](db)
                db.execute(f"PRAGMA user_version = {number}")
        stamped = {k: v for k, v in db.execute("SELECT k, v FROM app_meta").fetchall()}
        wanted = {"kind": kind, **meta}
        if not stamped:
            with db.atomic():
                for k, v in wanted.items():
                    db.execute("INSERT INTO app_meta (k, v) VALUES (?, ?)", (k, v))
        elif stamped != wanted:
            raise StorageError(
                f"{database.name} belongs to {stamped}, expected {wanted}; refusing to mix data"
            )
        return len(steps)

    return database.write(run, transactional=False)
