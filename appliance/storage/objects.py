"""Envelope-encrypted object store and the key store.

Each stored file (uploads, generated media) is encrypted in 1 MiB chunks with AES-256-GCM under
its own data key (DEK). The DEK is wrapped (AES-KW) by the key of the file's *subject* (a course,
user, client ...), and subject keys live, wrapped by the keyring's `subject-kek`, in `keystore.db`:
its own SQLCipher database outside point-in-time recovery, never rolled back. Deleting a subject's
key (`KeyStore.shred`) makes every copy of every file of that subject unreadable, wherever it is.

File format: `MAGIC(8) | object id(16) | subject hash(32) | wrapped DEK(40) | nonce prefix(7)`,
then chunks `length(4) | ciphertext+tag`; chunk i uses nonce `prefix | i (4 bytes) | last flag`
and the header as AAD, so truncation, reordering and swapping files are all detected.

The key store also holds the erasure ledger (see `appliance.backup.ledger`). Subjects are stored only as keyed
hashes of `workspace/env/kind/id`, so neither table holds personal data.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Protocol

import sqlite_utils
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from appliance.storage import crypto, files
from appliance.storage.database import Database, check_encrypted
from appliance.storage.diskfull import DiskMonitor
from appliance.storage.keyring import Keyring

KEYSTORE_FILE = "keystore.db"
KEYSTORE_KEY = "keystore"
SUBJECT_KEK = "subject-kek"
SUBJECT_ID_KEY = "subject-id"
OBJECTS_DIR = "objects"
MAGIC = b"APOBJ01\n"
CHUNK = 1024 * 1024
HEADER_LEN = len(MAGIC) + 16 + 32 + 40 + 7

KEYSTORE_DDL = [
    """CREATE TABLE IF NOT EXISTS subject_keys (
        id INTEGER PRIMARY KEY,
        subject TEXT NOT NULL UNIQUE,      -- keyed hash of workspace/env/kind/id
        wrapped BLOB NOT NULL,             -- AES-KW(subject-kek, key)
        created TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS objects (
        id INTEGER PRIMARY KEY,
        object_id TEXT NOT NULL UNIQUE,
        subject TEXT NOT NULL,
        workspace_id INTEGER NOT NULL,
        environment TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        created TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS objects_subject ON objects(subject)",
    """CREATE TABLE IF NOT EXISTS erasures (
        id INTEGER PRIMARY KEY,
        time TEXT NOT NULL,
        workspace_id INTEGER NOT NULL,
        environment TEXT NOT NULL,
        database TEXT NOT NULL,            -- backup name of the database (ws<id>-<env>)
        subject_kind TEXT NOT NULL,
        subject TEXT NOT NULL,             -- keyed hash, never the identifier itself
        rows TEXT NOT NULL                 -- JSON {table: [key JSON, ...]}: ids only
    )""",
]


class ObjectError(Exception):
    """An object is missing, was tampered with, or its subject key was shredded."""


class KeyStore:
    """`keystore.db` in the data directory: subject keys, the object index, the erasure ledger."""

    def __init__(
        self, data_dir: Path, keyring: Keyring, *, synchronous: str = "NORMAL", disk: DiskMonitor | None = None
    ) -> None:
        path = data_dir / KEYSTORE_FILE
        check_encrypted(path)
        self.database = Database(path, keyring.create(KEYSTORE_KEY), name="keystore", synchronous=synchronous)
        self.database.disk = disk
        self._kek = keyring.create(SUBJECT_KEK)
        self._id_key = keyring.create(SUBJECT_ID_KEY)

        def ddl(db: sqlite_utils.Database) -> None:
            for sql in KEYSTORE_DDL:
                db.execute(sql)

        self.database.write(ddl)

    def subject(self, workspace_id: int, environment: str, kind: str, subject_id: str | int) -> str:
        """The keyed hash that names a subject (no personal data in the key store or ledger)."""
        return hmac.new(
            self._id_key, f"{workspace_id}/{environment}/{kind}/{subject_id}".encode(), hashlib.sha256
        ).hexdigest()

    def subject_key(self, subject: str, *, create: bool = True) -> bytes:
        row = (
            self.database.read()
            .execute("SELECT wrapped FROM subject_keys WHERE subject = ?", [subject])
            .fetchone()
        )
        if row is not None:
            return crypto.unwrap(self._kek, row[0])
        if not create:
            raise ObjectError("this subject's key was shredded (or never existed)")

        def job(db: sqlite_utils.Database) -> bytes:
            found = db.execute("SELECT wrapped FROM subject_keys WHERE subject = ?", [subject]).fetchone()
            if found is not None:
                return bytes(found[0])
            wrapped = crypto.wrap(self._kek, crypto.new_key())
            db.execute(
                "INSERT INTO subject_keys (subject, wrapped, created) VALUES (?, ?, datetime('now'))",
                [subject, wrapped],
            )
            return wrapped

        return crypto.unwrap(self._kek, self.database.write(job))

    def shred(self, subject: str) -> int:
        """Delete a subject key for good: secure delete, checkpoint, VACUUM, checkpoint."""

        def delete(db: sqlite_utils.Database) -> int:
            return int(db.execute("DELETE FROM subject_keys WHERE subject = ?", [subject]).rowcount)

        n = self.database.write(delete)
        self.database.write(hard_delete_recipe, transactional=False)
        return n

    def close(self) -> None:
        self.database.close()


def hard_delete_recipe(db: sqlite_utils.Database) -> None:
    """After a DELETE: nothing of the rows may stay in the WAL, in free pages or in index slack."""
    db.execute("PRAGMA secure_delete = ON")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("VACUUM")
    for _ in range(50):
        busy = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        if not busy:
            return
        import time

        time.sleep(0.02)


class ObjectHost(Protocol):
    """What the object store is handed: the data directory and its open key store."""

    @property
    def data_dir(self) -> Path: ...

    @property
    def keystore(self) -> KeyStore: ...


# -- the object store -----------------------------------------------------------------------------
class ObjectStore:
    """Encrypted files under `<data dir>/objects/<workspace>/<env>/<object id>`."""

    def __init__(self, host: ObjectHost) -> None:
        self.data_dir = host.data_dir
        self.keys = host.keystore

    def _path(self, workspace_id: int, environment: str, object_id: str) -> Path:
        if not all(c in "0123456789abcdef" for c in object_id) or len(object_id) != 32:
            raise ObjectError("bad object id")
        return self.data_dir / OBJECTS_DIR / str(workspace_id) / environment / object_id

    def put(
        self,
        workspace_id: int,
        environment: str,
        subject_kind: str,
        subject_id: str | int,
        data: bytes | IO[bytes],
    ) -> str:
        """Encrypt and store a file for a subject; returns its object id (32 hex)."""
        subject = self.keys.subject(workspace_id, environment, subject_kind, subject_id)
        subject_key = self.keys.subject_key(subject)
        object_id = secrets.token_hex(16)
        dek = crypto.new_key()
        prefix = secrets.token_bytes(7)
        header = (
            MAGIC + bytes.fromhex(object_id) + bytes.fromhex(subject) + crypto.wrap(subject_key, dek) + prefix
        )
        aead = AESGCM(dek)
        path = self._path(workspace_id, environment, object_id)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        stream = _chunks(data)
        size = 0
        try:  # a failed write (disk full) leaves no partial or orphaned file behind
            with files.durable_file(path) as f:
                f.write(header)
                index = 0
                current = next(stream, b"")
                while True:
                    following = next(stream, None)
                    last = following is None
                    nonce = prefix + struct.pack(">I", index) + (b"\x01" if last else b"\x00")
                    sealed = aead.encrypt(nonce, current, header)
                    f.write(struct.pack(">I", len(sealed)) + sealed)
                    size += len(current)
                    if following is None:
                        break
                    current, index = following, index + 1
            self.keys.database.write(
                lambda db: db.execute(
                    "INSERT INTO objects (object_id, subject, workspace_id, environment, bytes, created) "
                    "VALUES (?, ?, ?, ?, ?, datetime('now'))",
                    [object_id, subject, workspace_id, environment, size],
                )
            )
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return object_id

    def iter_plain(self, workspace_id: int, environment: str, object_id: str) -> Iterator[bytes]:
        path = self._path(workspace_id, environment, object_id)
        if not path.exists():
            raise ObjectError("no such object")
        yield from decrypt_file(path, self.keys, object_id)

    def get(self, workspace_id: int, environment: str, object_id: str) -> bytes:
        return b"".join(self.iter_plain(workspace_id, environment, object_id))

    def delete(self, workspace_id: int, environment: str, object_id: str) -> None:
        self._path(workspace_id, environment, object_id).unlink(missing_ok=True)
        self.keys.database.write(
            lambda db: db.execute("DELETE FROM objects WHERE object_id = ?", [object_id])
        )

    def shred_subject(
        self, workspace_id: int, environment: str, subject_kind: str, subject_id: str | int
    ) -> int:
        """Crypto-shred a subject: its key goes, so every copy of its files (backups too) is noise.
        The files in the data directory are deleted as well. Returns the number of files."""
        subject = self.keys.subject(workspace_id, environment, subject_kind, subject_id)
        rows = (
            self.keys.database.read()
            .execute("SELECT object_id, workspace_id, environment FROM objects WHERE subject = ?", [subject])
            .fetchall()
        )
        for object_id, ws, env in rows:
            self._path(ws, env, object_id).unlink(missing_ok=True)
        self.keys.database.write(lambda db: db.execute("DELETE FROM objects WHERE subject = ?", [subject]))
        self.keys.shred(subject)
        return len(rows)


def _chunks(data: bytes | IO[bytes]) -> Iterator[bytes]:
    if isinstance(data, bytes | bytearray | memoryview):
        view = bytes(data)
        if not view:
            return
        for i in range(0, len(view), CHUNK):
            yield view[i : i + CHUNK]
        return
    while True:
        block = data.read(CHUNK)
        if not block:
            return
        yield block


def decrypt_file(path: Path, keys: KeyStore, expected_id: str | None = None) -> Iterator[bytes]:
    """Decrypt an object file with the key store's subject key (ObjectError once shredded)."""
    with open(path, "rb") as f:
        header = f.read(HEADER_LEN)
        if len(header) != HEADER_LEN or not header.startswith(MAGIC):
            raise ObjectError("not an object file")
        if expected_id is not None and header[len(MAGIC) : len(MAGIC) + 16].hex() != expected_id:
            raise ObjectError("this file belongs to another object")
        subject = header[len(MAGIC) + 16 : len(MAGIC) + 48].hex()
        wrapped = header[len(MAGIC) + 48 : len(MAGIC) + 88]
        prefix = header[len(MAGIC) + 88 :]
        dek = crypto.unwrap(keys.subject_key(subject, create=False), wrapped)
        aead = AESGCM(dek)
        index = 0
        while True:
            raw_len = f.read(4)
            if len(raw_len) != 4:
                raise ObjectError("object truncated")
            sealed = f.read(struct.unpack(">I", raw_len)[0])
            last = f.peek(1)[:1] == b"" if hasattr(f, "peek") else False
            nonce = prefix + struct.pack(">I", index) + (b"\x01" if last else b"\x00")
            try:
                yield aead.decrypt(nonce, sealed, header)
            except InvalidTag:
                raise ObjectError("object was altered or truncated") from None
            if last:
                return
            index += 1
