"""Hard deletion: after `erase`, no file in the data directory or the backup path holds the
subject's data, even decrypted with every key the appliance has; restores keep it gone."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from appliance import config
from appliance.backup.erasure import erase
from appliance.backup.format import iso, now_us, read_segment
from appliance.backup.ledger import ledger, ledger_rows
from appliance.backup.restore import restore, restore_file
from appliance.backup.service import BackupService
from appliance.backup.shipping import ship
from appliance.backup.snapshots import take_snapshot
from appliance.runtime import Runtime, initialise, open_runtime
from appliance.storage import capture, objects
from appliance.storage.database import open_file
from tests.helpers import cli

PAGE = 4096
RESERVE = 80  # SQLCipher 4: 16-byte IV + 64-byte HMAC-SHA512 at the end of every page


def _decrypt_page(page: bytes, key: bytes, first: bool) -> bytes:
    body = page[16 : PAGE - RESERVE] if first else page[: PAGE - RESERVE]
    iv = page[PAGE - RESERVE : PAGE - RESERVE + 16]
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return decryptor.update(body) + decryptor.finalize()


def sqlcipher_plaintext(path: Path, key: bytes) -> bytes:
    """Every page of a SQLCipher 4 database, journal or WAL file decrypted with a raw key: live
    rows, free pages and slack space alike (what someone with the key and the file would see)."""
    data = path.read_bytes()
    out = []
    if path.name.endswith("-wal"):
        off = 32
        while off + 24 + PAGE <= len(data):
            pgno = int.from_bytes(data[off : off + 4], "big")
            out.append(_decrypt_page(data[off + 24 : off + 24 + PAGE], key, pgno == 1))
            off += 24 + PAGE
    else:
        for i in range(0, len(data) - PAGE + 1, PAGE):
            out.append(_decrypt_page(data[i : i + PAGE], key, i == 0))
    return b"".join(out)


def find_marker(rt: Runtime, roots: list[Path], marker: bytes) -> list[str]:
    """Search every file under `roots`, raw and decrypted with every key in the keyring."""
    keys = [rt.keyring.get(name) for name in rt.keyring.names()]
    store = rt.keystore
    hits = []
    for root in roots:
        for path in root.rglob("*"):
            if not path.is_file():
                continue
            raw = path.read_bytes()
            if marker in raw or marker.hex().encode() in raw.lower():
                hits.append(f"{path} (raw)")
                continue
            if path.suffix == ".seg":
                content = read_segment(path, rt.keyring)
                text = json.dumps(content.records)
                if marker.decode() in text or marker.hex().upper() in text:
                    hits.append(f"{path} (log decrypted)")
                continue
            if path.parent.parent.name == objects.OBJECTS_DIR or objects.OBJECTS_DIR in path.parts:
                try:
                    plain = b"".join(objects.decrypt_file(path, store))
                except objects.ObjectError:
                    continue
                if marker in plain:
                    hits.append(f"{path} (object decrypted)")
                continue
            if len(raw) >= PAGE:
                for key in keys:
                    plain = sqlcipher_plaintext(path, key)
                    if marker in plain or marker.hex().upper().encode() in plain:
                        hits.append(f"{path} (decrypted)")
                        break
    return hits


def _insert(db: Any, table: str, values: dict[str, Any]) -> int:
    """Insert filling any NOT NULL column without a default (the schema grows concurrently)."""
    for _cid, name, typ, notnull, default, pk in db.execute(f"PRAGMA table_info({table})").fetchall():
        if notnull and default is None and not pk and name not in values:
            values[name] = 0 if "INT" in (typ or "").upper() else "x"
    cols = ", ".join(values)
    cursor = db.execute(
        f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' * len(values))})", list(values.values())
    )
    return int(cursor.lastrowid)


@pytest.fixture()
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt, _ = initialise(tmp_path / "data")
    rt.create_workspace("erasure")
    yield rt
    rt.close()


def test_hard_delete_leaves_nothing_anywhere_and_restores_keep_it_gone(
    runtime: Runtime, tmp_path: Path
) -> None:
    rt = runtime
    marker = b"zq-erase-me-7f3a9c"
    db = rt.environment(1, "test")
    service = BackupService(rt.backups)
    service.start()
    store = objects.ObjectStore(rt)

    def user(w: Any, ident: str, name: str) -> int:
        return _insert(
            w,
            "users",
            {
                "identifier": ident,
                "name": name,
                "email": f"{name}@example.org",
                "created": "c",
                "updated": "u",
            },
        )

    others = [db.write(lambda w, i=i: user(w, f"other-{i}", f"other person {i}")) for i in range(30)]
    victim = db.write(lambda w: user(w, "victim-1", marker.decode()))
    service.tick()
    take_snapshot(rt.backups, rt.backups.find("ws1-test"), "test")  # a snapshot holding the subject
    db.write(
        lambda w: w.execute("UPDATE users SET avatar = ? WHERE id = ?", [marker.decode() + "-v2", victim])
    )
    db.write(
        lambda w: _insert(
            w,
            "themes",
            {"name": "mentions " + marker.decode(), "colours": "{}", "created": "c", "updated": "u"},
        )
    )
    object_id = store.put(1, "test", "user", victim, marker * 5000)
    kept_object = store.put(1, "test", "user", others[0], b"someone else's file")
    service.tick()
    time.sleep(0.01)
    before_delete = now_us()
    time.sleep(0.01)
    assert find_marker(rt, [rt.data_dir], marker), "the search must see the subject before deletion"

    def delete_rows(w: Any) -> None:
        w.execute("DELETE FROM users WHERE id = ?", [victim])
        w.execute("UPDATE themes SET name = 'redacted' WHERE name LIKE ?", [f"%{marker.decode()}%"])

    report = erase(rt.backups, 1, "test", "user", victim, delete_rows)
    assert report.rows_deleted == {"users": 1}
    assert report.rows_anonymised == {"themes": 1}
    assert report.files_shredded == 1 and report.snapshots_scrubbed >= 2
    db.write(lambda w: user(w, "late", "late arrival"))
    service.tick()

    hits = find_marker(rt, [rt.data_dir], marker)
    assert not hits, f"subject data left behind: {hits}"
    with pytest.raises(objects.ObjectError):
        store.get(1, "test", object_id)
    assert store.get(1, "test", kept_object) == b"someone else's file"

    # the ledger names ids only, never the subject
    entries = ledger(rt.keystore)
    assert (
        len(entries) == 1
        and marker.decode() not in json.dumps(entries)
        and "victim" not in json.dumps(entries)
    )

    # restore to before the deletion: the subject stays gone (scrubbed history + ledger re-applied)
    target = tmp_path / "restored"
    restore(rt.backups, before_delete, target)
    restored = open_runtime(config.load(target))
    try:
        rdb = restored.environment(1, "test").read()
        assert rdb.execute("SELECT count(*) FROM users WHERE id = ?", [victim]).fetchone()[0] == 0
        assert rdb.execute("SELECT count(*) FROM users").fetchone()[0] == 30
        assert rdb.execute("SELECT count(*) FROM themes WHERE name = 'redacted'").fetchone()[0] == 1
    finally:
        restored.close()
    assert not find_marker(rt, [target], marker)
    service.stop()


def test_ledger_is_reapplied_when_an_old_copy_still_holds_the_rows(runtime: Runtime, tmp_path: Path) -> None:
    """A snapshot copied away before the erasure (say, by a disk image) and put back: the restore
    re-applies the ledger, so the subject does not come back."""
    rt = runtime
    db = rt.environment(1, "test")
    ids = [
        db.write(
            lambda w, i=i: _insert(
                w, "themes", {"name": f"t{i}", "colours": "{}", "created": "c", "updated": "u"}
            )
        )
        for i in range(5)
    ]
    target = rt.backups.find("ws1-test")
    ship(rt.backups, target)
    snap = take_snapshot(rt.backups, target)
    stash = tmp_path / "stash.snap"
    stash.write_bytes(snap.path.read_bytes())
    time.sleep(0.01)
    when = now_us()  # before the erasure
    time.sleep(0.01)
    erase(rt.backups, 1, "test", "theme", ids[2], lambda w: w.execute("DELETE FROM themes WHERE id = ?", [ids[2]])
    )
    snap.path.write_bytes(stash.read_bytes())  # the old copy comes back
    out = tmp_path / "r.db"
    without = restore_file(
        rt.keyring, rt.backups.root / "ws1-test", when, out, rt.keyring.get(target.key_name), []
    )
    conn = open_file(out, rt.keyring.get(target.key_name), readonly=True)
    assert conn.execute("SELECT count(*) FROM themes WHERE id = ?", [ids[2]]).fetchone()[0] == 1
    conn.close()
    assert without.erased_rows == 0
    res = restore_file(
        rt.keyring,
        rt.backups.root / "ws1-test",
        when,
        out,
        rt.keyring.get(target.key_name),
        ledger_rows(rt.keystore, "ws1-test"),
    )
    assert res.erased_rows == 1
    conn = open_file(out, rt.keyring.get(target.key_name), readonly=True)
    try:
        assert conn.execute("SELECT count(*) FROM themes WHERE id = ?", [ids[2]]).fetchone()[0] == 0
        assert conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'themes'").fetchone()[0] >= ids[2]
        assert capture.current_seq(conn) > 0
    finally:
        conn.close()


def test_in_place_restore_before_a_deletion_keeps_the_subject_gone(tmp_path: Path) -> None:
    data = tmp_path / "data"
    rt, _ = initialise(data)
    try:
        ws = rt.create_workspace("w")
        db = rt.environment(ws, "test")
        for t in rt.backups.targets():
            take_snapshot(rt.backups, t)
        tid = db.write(
            lambda w: _insert(
                w, "themes", {"name": "doomed-zx81", "colours": "{}", "created": "c", "updated": "u"}
            )
        )
        ship(rt.backups, rt.backups.find(f"ws{ws}-test"))
        time.sleep(0.01)
        when = now_us()
        time.sleep(0.01)
        erase(rt.backups, ws, "test", "theme", tid, lambda w: w.execute("DELETE FROM themes WHERE id = ?", [tid])
        )
    finally:
        rt.close()
    cli("restore", "--to", iso(when), data_dir=data)
    rt = open_runtime(config.load(data))
    try:
        assert (
            rt.environment(ws, "test")
            .read()
            .execute("SELECT count(*) FROM themes WHERE id = ?", [tid])
            .fetchone()[0]
            == 0
        )
        assert not find_marker(rt, [data], b"doomed-zx81")
    finally:
        rt.close()
