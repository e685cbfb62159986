from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from appliance.storage import crypto, schema
from appliance.storage.database import Database, StorageError, check_encrypted, connect


def _plain_sqlite_opens(path: Path) -> bool:
    """Try the stdlib sqlite3 in a separate process (never two SQLite libraries on one file here)."""
    code = (
        "import sqlite3,sys\n"
        "try:\n sqlite3.connect(sys.argv[1]).execute('select count(*) from sqlite_master').fetchone()\n"
        "except sqlite3.DatabaseError:\n sys.exit(3)\n"
    )
    return subprocess.run([sys.executable, "-c", code, str(path)]).returncode == 0


def test_database_is_encrypted_and_needs_its_key(tmp_path: Path) -> None:
    path, key = tmp_path / "x.db", crypto.new_key()
    db = Database(path, key, name="x")
    db.write(lambda w: w.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    db.write(lambda w: w["t"].insert({"v": "needle-in-the-haystack"}))
    db.close()
    raw = path.read_bytes()
    assert not raw.startswith(b"SQLite format 3")
    assert b"needle-in-the-haystack" not in raw
    assert not _plain_sqlite_opens(path)
    with pytest.raises(StorageError):
        connect(path, crypto.new_key())
    check_encrypted(path)  # passes: it does not open without a key


def test_check_encrypted_refuses_plaintext_file(tmp_path: Path) -> None:
    path = tmp_path / "plain.db"
    subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sqlite3; sqlite3.connect({str(path)!r}).execute('create table a(b)')",
        ],
        check=True,
    )
    with pytest.raises(StorageError, match="plaintext"):
        check_encrypted(path)


def test_group_commit_isolates_a_failing_job(tmp_path: Path) -> None:
    db = Database(tmp_path / "g.db", crypto.new_key(), name="g")
    db.write(lambda w: w.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)"))
    gate = threading.Event()
    blocker = db.submit(lambda w: gate.wait(5))  # holds the writer so the next jobs queue up as one group
    futures = [
        db.submit(lambda w, i=i: w.execute("INSERT INTO t (v) VALUES (?)", [f"v{i}"])) for i in range(20)
    ]
    failing = db.submit(lambda w: w.execute("INSERT INTO t (v) VALUES ('v3')"))  # duplicate: fails alone
    gate.set()
    blocker.result()
    for f in futures:
        f.result()
    with pytest.raises(Exception, match="UNIQUE"):
        failing.result()
    assert db.read().execute("SELECT count(*) FROM t").fetchone()[0] == 20
    db.close()


def test_readers_are_read_only(tmp_path: Path) -> None:
    db = Database(tmp_path / "r.db", crypto.new_key(), name="r")
    db.write(lambda w: w.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
    with pytest.raises(Exception, match=r"readonly|query_only|attempt to write"):
        db.read().execute("INSERT INTO t DEFAULT VALUES")
    db.close()


def test_migrations_are_versioned_and_identity_checked(tmp_path: Path) -> None:
    path, key = tmp_path / "e.db", crypto.new_key()
    db = Database(path, key, name="e")
    meta = {"workspace_id": "1", "environment": "test"}
    assert schema.migrate(db, "environment", meta) == len(schema.MIGRATIONS["environment"])
    assert schema.migrate(db, "environment", meta) == len(schema.MIGRATIONS["environment"])  # idempotent
    assert db.read().execute("PRAGMA user_version").fetchone()[0] == len(schema.MIGRATIONS["environment"])
    with pytest.raises(StorageError, match="refusing to mix"):
        schema.migrate(db, "environment", {"workspace_id": "1", "environment": "production"})
    db.close()
