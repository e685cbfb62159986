"""Key rotation, online: master key, database keys, backup/log keys.

- **Master key** (`rotate_master`): a new master key wraps the same keyring. Crash-safe order:
  the new key is written to `master.key.next`, the keyring is re-wrapped (one atomic file
  replace), then `master.key.next` replaces `master.key`; `finish_master_rotation` completes an
  interrupted rotation. A running server keeps its unwrapped keys in memory and re-reads
  `master.key` when an unwrap fails (new keys created after the rotation). In sealed mode the new
  key comes from a new passphrase; a running sealed server cannot re-read it, so restart it
  before creating workspaces.
- **Database key** (`rekey`): `PRAGMA rekey` on the database's own writer connection (the live
  file is re-encrypted page by page in one transaction), WAL checkpointed, readers reopen with the
  new key. When a server is running the CLI hands the request to it through `requests/`, because
  only the process holding the connections can rekey without breaking them. The old key is kept
  in the keyring as `<name>#old` until the next rekey (snapshots use backup keys, not this one).
- **Backup keys** (`appliance.backup.keys.rotate_backup_keys`): a new generation for new snapshots
  and segments; older backups stay readable with their generation until retention removes them
  and `appliance.backup.pruning.prune_keys` removes the unused keys.

Everything here is handed what it works on (the data directory, the keyring, one database and its
key name); which database a name such as `ws3-test` means is the caller's business.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.storage import crypto, files
from appliance.storage.database import Database, StorageError
from appliance.storage.keyring import Keyring

NEXT_MASTER = crypto.MASTER_KEY_FILE + ".next"
REQUESTS_DIR = "requests"


def rotate_master(data_dir: Path, keyring: Keyring, new_passphrase: str | None = None) -> None:
    """Re-wrap the keyring under a new master key (a new key file, or a new passphrase)."""
    if crypto.is_sealed(data_dir):
        if not new_passphrase:
            raise crypto.KeyProblem("a sealed data directory needs the new passphrase")
        salt = secrets.token_bytes(16)
        new = crypto.derive_from_passphrase(new_passphrase, salt)
        crypto.write_secret_file(data_dir / (crypto.MASTER_SALT_FILE + ".next"), salt)
        keyring.rewrap(new)
        files.durable_replace(data_dir / (crypto.MASTER_SALT_FILE + ".next"), data_dir / crypto.MASTER_SALT_FILE)
        return
    new = crypto.new_key()
    crypto.write_secret_file(data_dir / NEXT_MASTER, new)
    keyring.rewrap(new)
    files.durable_replace(data_dir / NEXT_MASTER, data_dir / crypto.MASTER_KEY_FILE)


def finish_master_rotation(data_dir: Path) -> bool:
    """If a rotation stopped after re-wrapping, the keyring opens with master.key.next: adopt it."""
    nxt = data_dir / NEXT_MASTER
    if not nxt.exists():
        return False
    doc = json.loads((data_dir / "keyring.json").read_text())
    sample = next(iter(doc["keys"].values()), None)
    if sample is None:
        nxt.unlink()
        return False
    try:
        crypto.unwrap(nxt.read_bytes(), bytes.fromhex(sample))
    except crypto.KeyProblem:
        nxt.unlink()  # the rewrap never happened: the old key is still the right one
        return False
    files.durable_replace(nxt, data_dir / crypto.MASTER_KEY_FILE)
    return True


def rekey(keyring: Keyring, database: Database, key_name: str) -> float:
    """Re-encrypt one database under a new key, online; returns the seconds it took."""
    new = crypto.new_key()
    old = keyring.get(key_name)
    keyring.replace(f"{key_name}#next", new)  # recoverable if we crash half-way
    started = time.monotonic()
    database.rekey(new)
    keyring.replace(key_name, new)
    keyring.replace(f"{key_name}#old", old)
    keyring.remove(f"{key_name}#next")
    return round(time.monotonic() - started, 3)


# -- requests to a running server -----------------------------------------------------------------
def request(data_dir: Path, op: str, timeout: float = 300.0, **args: Any) -> dict[str, Any]:
    """Ask the running server to do something only it can do (rekey its open databases)."""
    req_dir = data_dir / REQUESTS_DIR
    req_dir.mkdir(exist_ok=True, mode=0o700)
    rid = secrets.token_hex(8)
    files.durable_write(req_dir / f"{rid}.req", json.dumps({"op": op, **args}).encode())
    done = req_dir / f"{rid}.done"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done.exists():
            result: dict[str, Any] = json.loads(done.read_text())
            done.unlink()
            return result
        time.sleep(0.1)
    raise StorageError("the server did not answer the request in time (is it running this version?)")


def handle_requests(data_dir: Path, rekey_named: Callable[[str], float]) -> None:
    """Answer the CLI's requests; called by the server's background thread every tick.
    `rekey_named` rekeys the database with a given name (control, ws<id>-<env>, keystore, audit)."""
    req_dir = data_dir / REQUESTS_DIR
    if not req_dir.is_dir():
        return
    for path in sorted(req_dir.glob("*.req")):
        try:
            doc = json.loads(path.read_text())
            if doc.get("op") == "rekey":
                result: dict[str, Any] = {"ok": True, "seconds": rekey_named(str(doc["db"]))}
            else:
                result = {"ok": False, "error": f"unknown request {doc.get('op')!r}"}
        except Exception as exc:
            result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        path.unlink(missing_ok=True)
        files.durable_write(path.with_suffix(".done"), json.dumps(result).encode())
