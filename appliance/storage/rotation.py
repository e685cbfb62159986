"""Key rotation, online (D4): master key, database keys, backup/log keys.

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
- **Backup keys** (`pitr.rotate_backup_keys`): a new generation for new snapshots and segments;
  older backups stay readable with their generation until retention removes them and
  `pitr.prune_keys` removes the unused keys.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.storage import crypto, pitr
from appliance.storage.database import Database, StorageError

if TYPE_CHECKING:
    from appliance.runtime import Runtime

NEXT_MASTER = crypto.MASTER_KEY_FILE + ".next"
REQUESTS_DIR = "requests"


def rotate_master(runtime: Runtime, new_passphrase: str | None = None) -> None:
    """Re-wrap the keyring under a new master key (a new key file, or a new passphrase)."""
    data_dir = runtime.data_dir
    if crypto.is_sealed(data_dir):
        if not new_passphrase:
            raise crypto.KeyProblem("a sealed data directory needs the new passphrase")
        salt = secrets.token_bytes(16)
        new = crypto.derive_from_passphrase(new_passphrase, salt)
        crypto.write_secret_file(data_dir / (crypto.MASTER_SALT_FILE + ".next"), salt)
        runtime.keyring.rewrap(new)
        os.replace(data_dir / (crypto.MASTER_SALT_FILE + ".next"), data_dir / crypto.MASTER_SALT_FILE)
        return
    new = crypto.new_key()
    crypto.write_secret_file(data_dir / NEXT_MASTER, new)
    runtime.keyring.rewrap(new)
    os.replace(data_dir / NEXT_MASTER, data_dir / crypto.MASTER_KEY_FILE)
    fd = os.open(data_dir, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
    os.replace(nxt, data_dir / crypto.MASTER_KEY_FILE)
    return True


def database_named(runtime: Runtime, name: str) -> tuple[Database, str]:
    """A covered database by backup name (control, ws<id>-<env>), or keystore/audit."""
    from appliance.runtime import AUDIT_KEY
    from appliance.storage import objects

    if name == "audit":
        return runtime.audit.database, AUDIT_KEY
    if name == "keystore":
        return objects.keystore(runtime).database, objects.KEYSTORE_KEY
    target = pitr.find_target(runtime, name)
    return pitr.database_of(runtime, target), target.key_name


def rekey(runtime: Runtime, name: str) -> float:
    """Re-encrypt one database under a new key, online; returns the seconds it took."""
    database, key_name = database_named(runtime, name)
    new = crypto.new_key()
    old = runtime.keyring.get(key_name)
    runtime.keyring.replace(f"{key_name}#next", new)  # recoverable if we crash half-way
    started = time.monotonic()

    def job(db: Any) -> None:
        db.execute(f"PRAGMA rekey = \"x'{new.hex()}'\"")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        database._key = new  # readers notice and reopen with the new key

    database.write(job, transactional=False)
    runtime.keyring.replace(key_name, new)
    runtime.keyring.replace(f"{key_name}#old", old)
    runtime.keyring.remove(f"{key_name}#next")
    return round(time.monotonic() - started, 3)


# -- requests to a running server -----------------------------------------------------------------
def request(data_dir: Path, op: str, timeout: float = 300.0, **args: Any) -> dict[str, Any]:
    """Ask the running server to do something only it can do (rekey its open databases)."""
    req_dir = data_dir / REQUESTS_DIR
    req_dir.mkdir(exist_ok=True, mode=0o700)
    rid = secrets.token_hex(8)
    tmp = req_dir / f".{rid}.tmp"
    tmp.write_text(json.dumps({"op": op, **args}))
    os.replace(tmp, req_dir / f"{rid}.req")
    done = req_dir / f"{rid}.done"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done.exists():
            result: dict[str, Any] = json.loads(done.read_text())
            done.unlink()
            return result
        time.sleep(0.1)
    raise StorageError("the server did not answer the request in time (is it running this version?)")


def handle_requests(runtime: Runtime) -> None:
    """Called by the server's background thread every tick."""
    req_dir = runtime.data_dir / REQUESTS_DIR
    if not req_dir.is_dir():
        return
    for path in sorted(req_dir.glob("*.req")):
        try:
            doc = json.loads(path.read_text())
            if doc.get("op") == "rekey":
                result: dict[str, Any] = {"ok": True, "seconds": rekey(runtime, str(doc["db"]))}
            else:
                result = {"ok": False, "error": f"unknown request {doc.get('op')!r}"}
        except Exception as exc:
            result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        path.unlink(missing_ok=True)
        done = path.with_suffix(".done")
        tmp = done.with_name("." + done.name + ".tmp")
        tmp.write_text(json.dumps(result))
        os.replace(tmp, done)
