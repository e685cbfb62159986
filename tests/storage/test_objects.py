"""Envelope-encrypted object store: per-file keys under per-subject keys, crypto-shredding."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.runtime import Runtime, initialise
from appliance.storage import objects
from appliance.storage.database import check_encrypted


@pytest.fixture()
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt, _ = initialise(tmp_path / "data")
    rt.create_workspace("objects")
    yield rt
    rt.close()


def _path(rt: Runtime, object_id: str) -> Path:
    return rt.data_dir / objects.OBJECTS_DIR / "1" / "test" / object_id


def test_round_trip_is_encrypted_and_chunked(runtime: Runtime) -> None:
    store = objects.ObjectStore(runtime)
    data = os.urandom(100) + b"plain-needle" * 300_000  # 3.6 MB: four chunks
    object_id = store.put(1, "test", "course", 42, io.BytesIO(data))
    assert store.get(1, "test", object_id) == data
    raw = _path(runtime, object_id).read_bytes()
    assert b"plain-needle" not in raw
    assert len(raw) - len(data) < 200  # header + 4 x (length + tag)
    empty = store.put(1, "test", "course", 42, b"")
    assert store.get(1, "test", empty) == b""
    check_encrypted(runtime.data_dir / objects.KEYSTORE_FILE)


@pytest.mark.parametrize("damage", ["flip", "truncate", "drop-last-chunk", "swap"])
def test_tampering_is_detected(runtime: Runtime, damage: str) -> None:
    store = objects.ObjectStore(runtime)
    a = store.put(1, "test", "course", 1, b"A" * (2 * objects.CHUNK + 10))
    b = store.put(1, "test", "course", 1, b"B" * 10)
    pa, pb = _path(runtime, a), _path(runtime, b)
    raw = pa.read_bytes()
    if damage == "flip":
        pa.write_bytes(raw[:5000] + bytes([raw[5000] ^ 1]) + raw[5001:])
    elif damage == "truncate":
        pa.write_bytes(raw[:-7])
    elif damage == "drop-last-chunk":
        pa.write_bytes(raw[: objects.HEADER_LEN + 2 * (4 + objects.CHUNK + 16)])
    else:
        pa.write_bytes(pb.read_bytes())  # another object's file under this id
    with pytest.raises(objects.ObjectError):
        store.get(1, "test", a)


def test_shredding_a_subject_makes_every_copy_unreadable(runtime: Runtime, tmp_path: Path) -> None:
    store = objects.ObjectStore(runtime)
    mine = [store.put(1, "test", "user", 7, f"file {i} of user 7".encode()) for i in range(3)]
    theirs = store.put(1, "test", "user", 8, b"user 8")
    copies = []
    for object_id in mine:  # copies made elsewhere before the deletion (a backup, a disk image)
        copy = tmp_path / f"copy-{object_id}"
        copy.write_bytes(_path(runtime, object_id).read_bytes())
        copies.append(copy)
    assert b"".join(objects.decrypt_file(copies[0], store.keys)) == b"file 0 of user 7"
    assert store.shred_subject(1, "test", "user", 7) == 3
    for object_id, copy in zip(mine, copies, strict=True):
        assert not _path(runtime, object_id).exists()
        with pytest.raises(objects.ObjectError):
            b"".join(objects.decrypt_file(copy, store.keys))
    assert store.get(1, "test", theirs) == b"user 8"
    # the subject is stored only as a keyed hash: no identifier in the key store
    rows = store.keys.database.read().execute("SELECT subject FROM subject_keys").fetchall()
    assert all(len(r[0]) == 64 and "7" != r[0] for r in rows)
    # the same subject in the other environment is a different subject with a different key
    assert store.keys.subject(1, "test", "user", 7) != store.keys.subject(1, "production", "user", 7)


def test_object_ids_cannot_escape_the_store(runtime: Runtime) -> None:
    store = objects.ObjectStore(runtime)
    with pytest.raises(objects.ObjectError):
        store.get(1, "test", "../../keyring.json")
