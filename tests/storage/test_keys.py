from __future__ import annotations

import os
from pathlib import Path

import pytest

from appliance.storage import crypto
from appliance.storage.keyring import Keyring
from tests.helpers import cli


def test_keyring_wraps_keys_under_the_master_key(tmp_path: Path) -> None:
    master = crypto.create_master_key(tmp_path)
    ring = Keyring(tmp_path, master)
    key = ring.create("control")
    assert ring.create("control") == key  # idempotent
    assert key.hex() not in (tmp_path / "keyring.json").read_text()
    assert Keyring(tmp_path, master).get("control") == key
    with pytest.raises(crypto.KeyProblem):
        Keyring(tmp_path, crypto.new_key())


def test_master_key_rotation_rewraps(tmp_path: Path) -> None:
    master = crypto.create_master_key(tmp_path)
    ring = Keyring(tmp_path, master)
    key = ring.create("a")
    new_master = crypto.new_key()
    ring.rewrap(new_master)
    assert Keyring(tmp_path, new_master).get("a") == key
    with pytest.raises(crypto.KeyProblem):
        Keyring(tmp_path, master)


def test_master_key_file_must_be_private(tmp_path: Path) -> None:
    crypto.create_master_key(tmp_path)
    os.chmod(tmp_path / crypto.MASTER_KEY_FILE, 0o644)
    with pytest.raises(crypto.KeyProblem, match="readable by others"):
        crypto.load_master_key(tmp_path)


def test_sealed_data_dir_opens_only_with_the_passphrase(tmp_path: Path) -> None:
    data = tmp_path / "sealed"
    phrase = "correct horse battery staple\n"
    out = cli("init", "--passphrase-stdin", data_dir=data, input_text=phrase).stdout
    assert "Workspace id" in out
    assert not (data / crypto.MASTER_KEY_FILE).exists()
    assert cli("doctor", "--passphrase-stdin", data_dir=data, input_text=phrase).returncode == 0
    wrong = cli(
        "doctor", "--passphrase-stdin", data_dir=data, input_text="not the right phrase\n", check=False
    )
    assert wrong.returncode != 0
    assert "FAIL" in wrong.stdout or "error" in wrong.stderr
