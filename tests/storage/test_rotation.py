"""Key rotation while a real server runs: master key, database rekey, backup/log keys.

The server must keep answering through every rotation, and every backup taken before any of them
must still restore to exactly the state of its time."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from appliance import config
from appliance.backup.format import iso, list_snapshots, now_us
from appliance.backup.pruning import prune_keys
from appliance.runtime import open_runtime
from appliance.storage import crypto
from appliance.storage.database import StorageError, connect
from tests.helpers import cli, create_key, init_data_dir, start_server


def _state(client: Any) -> list[tuple[int, str]]:
    response = client.get("/v1/headless/themes")
    assert response.status_code == 200
    return sorted((t["id"], t["name"]) for t in response.json())


def _write(client: Any, label: str, n: int = 4) -> None:
    for i in range(n):
        response = client.post("/v1/headless/themes", json={"name": f"{label}-{i}"})
        assert response.status_code == 200, response.text


def test_online_rotations_keep_serving_and_old_backups_restorable(tmp_path: Path) -> None:
    install = init_data_dir(tmp_path / "data")
    data, ws = install.data_dir, install.workspace_id
    env = {"APPLIANCE_BACKUP_SHIP_INTERVAL_SECONDS": "0.1"}
    server = start_server(data, env=env)
    marks: list[tuple[str, list[tuple[int, str]]]] = []

    def mark(client: Any) -> None:
        time.sleep(0.05)
        marks.append((iso(now_us()), _state(client)))
        time.sleep(0.05)

    try:
        with server.client(install.test_key) as c:
            _write(c, "gen1")
            mark(c)
            c.delete(f"/v1/headless/themes/{marks[0][1][0][0]}")
            mark(c)
            assert "generation 2" in cli("keys", "rotate-backup", data_dir=data).stdout
            cli("backup", "now", data_dir=data)
            _write(c, "gen2")
            mark(c)

            old_master = (data / crypto.MASTER_KEY_FILE).read_bytes()
            cli("keys", "rotate-master", data_dir=data)
            assert (data / crypto.MASTER_KEY_FILE).read_bytes() != old_master
            _write(c, "after-master")
            # a workspace created after the rotation: its keys are wrapped by the new master key,
            # which the running server picks up from master.key when its old one no longer unwraps
            ws2 = int(cli("workspace", "create", "--name", "late", data_dir=data).stdout.strip())
            with server.client(create_key(data, ws2, "test")) as c2:
                _write(c2, "late", 1)

            key_before = _env_key(data, ws)
            out = cli("keys", "rekey", "--db", f"ws{ws}-test", data_dir=data).stdout
            assert "by the running server" in out
            assert _env_key(data, ws) != key_before
            _write(c, "after-rekey")
            mark(c)
            cli("keys", "rekey", "--db", "control", data_dir=data)  # every request authenticates against it
            _write(c, "after-control-rekey", 2)
            mark(c)
    finally:
        server.stop()

    # the live file no longer opens with the old database key
    with pytest.raises(StorageError):
        connect(data / "workspaces" / str(ws) / "test.db", key_before).close()
    rt = open_runtime(config.load(data))
    try:
        gens = {s.gen for s in list_snapshots(rt.backups.root / f"ws{ws}-test")}
        assert gens == {1, 2}, gens
        assert "backup/log/1" not in prune_keys(rt.backups)  # still needed by the older backups
        assert rt.keyring.has("backup/snapshot/1")
    finally:
        rt.close()
    assert len({str(s) for _, s in marks}) == len(marks)
    for n, (when, expected) in enumerate(marks):
        target = tmp_path / f"restored-{n}"
        cli(
            "restore",
            "--to",
            when,
            "--target",
            str(target),
            "--workspace",
            str(ws),
            "--env",
            "test",
            data_dir=data,
        )
        restored = open_runtime(config.load(target))
        try:
            rows = restored.environment(ws, "test").read().execute("SELECT id, name FROM themes").fetchall()
        finally:
            restored.close()
        assert sorted((r[0], r[1]) for r in rows) == expected, f"mark {n} ({when})"
    assert cli("backup", "verify", data_dir=data).returncode == 0


def _env_key(data: Path, ws: int) -> bytes:
    from appliance.storage.keyring import Keyring

    return Keyring(data, crypto.load_master_key(data)).get(f"ws/{ws}/test")


def test_interrupted_master_rotation_is_finished(tmp_path: Path) -> None:
    from appliance.storage import rotation
    from appliance.storage.keyring import Keyring

    data = tmp_path / "d"
    data.mkdir()
    master = crypto.create_master_key(data)
    ring = Keyring(data, master)
    key = ring.create("x")
    new = crypto.new_key()
    crypto.write_secret_file(data / rotation.NEXT_MASTER, new)
    ring.rewrap(new)  # crash here: master.key still holds the old key
    with pytest.raises(crypto.KeyProblem):
        Keyring(data, crypto.load_master_key(data))
    assert rotation.finish_master_rotation(data)
    assert Keyring(data, crypto.load_master_key(data)).get("x") == key
    assert not re.search("next", " ".join(p.name for p in data.iterdir()))
