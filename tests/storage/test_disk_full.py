"""Disk full under a real write load: a clear 507, nothing acknowledged lost, writes resume by themselves.

The server runs in its own mount namespace (`unshare --mount`) with its data directory on a small
tmpfs; the test fills that tmpfs through `/proc/<server pid>/root/...` while four clients keep
creating themes, then frees the space again. Checked: every answer during the episode is a 2xx or
the D1 error body with 507 and Retry-After (never a 500), reads stay up, the server logs the episode
once, writes resume without a restart, every 2xx write is there, and afterwards the databases pass
`integrity_check`, the audit chain verifies and the snapshots + change log restore to the live state.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from appliance import config
from appliance.errors import error_body
from appliance.runtime import open_runtime
from appliance.storage import diskfull
from appliance.storage.database import fetch_one
from tests.helpers import Server, all_pages, cli, init_data_dir, start_server

TMPFS_MB = 48


def _namespaces_work(tmp_path: Path) -> str | None:
    """None if `unshare --mount` and a tmpfs mount work here, else why not."""
    if os.geteuid() != 0:
        return "needs root (mount namespaces and tmpfs mounts)"
    if not shutil.which("unshare") or not shutil.which("nsenter"):
        return "needs util-linux unshare and nsenter"
    probe = tmp_path / "probe"
    probe.mkdir()
    result = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            f"mount -t tmpfs -o size=1m tmpfs {probe} && touch {probe}/x",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if result.returncode != 0:
        return f"unshare --mount is not permitted here: {result.stderr.strip()[:200]}"
    return None


def _in_tmpfs(source: Path, mount: Path, *, full_at_start: bool = False) -> Any:
    """A start_server wrap: the server in its own mount namespace on a copy of `source` on a tmpfs;
    `full_at_start` fills that tmpfs first (what a restart after the disk filled up meets)."""
    fill = f'(dd if=/dev/zero of="{mount}/filler" bs=64k 2>/dev/null; true) && ' if full_at_start else ""

    def wrap(command: list[str]) -> list[str]:
        script = (
            f'mount -t tmpfs -o size={TMPFS_MB}m,mode=0700 tmpfs "{mount}" && '
            f'cp -a "{source}/." "{mount}/" && {fill}exec "$@"'
        )
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *command]

    return wrap


def _fill(path: Path, reserve: Path | None = None) -> int:
    """Fill the tmpfs through the server's mount namespace; returns the bytes written.

    The bulk is taken in one allocation (all or nothing on tmpfs), then topped up in small writes
    until the disk is full or, with ``reserve``, until that file is gone. Written megabyte by
    megabyte, the server could meet the full disk while the filler was still writing, give back its
    space reserve, and see the filler take the reserve too (then even a read's audit entry found no
    room, and the read got 507). The top-up narrowed that window but still wrote until ENOSPC, so
    a reserve given back during it was taken the same way (seen as the same 507, now and then, on
    a loaded machine): once the server has given its reserve back, the disk is full for it and the
    space that reappears is the server's."""
    written = 0
    with open(path, "wb", buffering=0) as f:
        st = os.statvfs(path.parent)
        bulk = st.f_bavail * st.f_frsize - (1 << 20)
        while bulk > 0:
            try:
                os.posix_fallocate(f.fileno(), 0, bulk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                bulk -= 1 << 20  # the server wrote meanwhile: a little less
                continue
            f.seek(bulk)
            written = bulk
            break
        for size in (1 << 16, 4096, 512):
            chunk = b"\xa5" * size
            while reserve is None or reserve.exists():
                try:
                    written += f.write(chunk) or 0
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    break
    return written


class Load:
    """Four clients creating themes; every answer is recorded."""

    def __init__(self, server: Server, key: str) -> None:
        self.server = server
        self.key = key
        self.phase = "before"
        self.acked: dict[int, str] = {}
        self.answers: list[tuple[str, int, dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(n,)) for n in range(4)]

    def _run(self, n: int) -> None:
        with self.server.client(self.key) as client:
            i = 0
            while not self.stop.is_set():
                name = f"disk-{n}-{i}"
                phase = self.phase
                response = client.post("/v1/headless/themes", json={"name": name, "logo": ["x" * 190] * 10})
                with self.lock:
                    self.answers.append(
                        (phase, response.status_code, dict(response.headers), response.content)
                    )
                    if response.status_code == 200:
                        self.acked[response.json()["id"]] = name
                i += 1
                time.sleep(0.005)

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()

    def count(self, phase: str) -> Counter[int]:
        with self.lock:
            return Counter(status for p, status, _h, _b in self.answers if p == phase)


def _health(server: Server, token: str) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/health", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _log_events(server: Server, msg_start: str) -> list[dict[str, Any]]:
    out = []
    for line in server.log().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and str(entry.get("msg", "")).startswith(msg_start):
            out.append(entry)
    return out


# with a space reserve the audit log keeps recording and reads go on; without one even the audit
# entries fail, and so (fail-closed) does every request, reads included, with the same 507 body
@pytest.mark.parametrize("reserve_mb", [8, 0], ids=["reserve", "no-reserve"])
def test_disk_full_answers_507_keeps_every_acknowledged_write_and_resumes(
    tmp_path: Path, reserve_mb: int
) -> None:
    reason = _namespaces_work(tmp_path)
    if reason:
        pytest.skip(reason)
    install = init_data_dir(tmp_path / "source")
    mount = tmp_path / "mnt"
    mount.mkdir()
    env = {
        "APPLIANCE_STORAGE_DISK_RESERVE_MB": str(reserve_mb),
        "APPLIANCE_STORAGE_SYNCHRONOUS": "FULL",
        "APPLIANCE_BACKUP_SHIP_INTERVAL_SECONDS": "0.2",  # shipping keeps running around the episode
        "APPLIANCE_LIMITS_RATE_PER_SECOND": "10000",
        "APPLIANCE_LIMITS_RATE_BURST": "10000",
    }
    server = start_server(mount, env=env, wrap=_in_tmpfs(install.data_dir, mount))
    holder: subprocess.Popen[bytes] | None = None
    try:
        pid = server.process.pid
        inside = Path(f"/proc/{pid}/root") / mount.relative_to("/")
        assert (inside / "control.db").exists() and not (mount / "control.db").exists(), "not in a namespace"
        reserve = inside / diskfull.RESERVE_FILE
        assert (reserve.stat().st_size if reserve_mb else reserve.exists()) == reserve_mb << 20
        # keeps the namespace (and the tmpfs) alive after the server stops, for the offline checks
        holder = subprocess.Popen(["nsenter", "-t", str(pid), "-m", "sleep", "300"])

        with Load(server, install.test_key) as load:
            deadline = time.monotonic() + 15
            while len(load.acked) < 40 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(load.acked) >= 40, f"the load did not get going: {load.count('before')}"

            filler = inside / "filler"
            filled = _fill(filler, reserve if reserve_mb else None)
            load.phase = "full"
            deadline = time.monotonic() + 15
            while load.count("full")[507] < 30 and time.monotonic() < deadline:
                time.sleep(0.05)
            if reserve_mb:
                with server.client(install.test_key) as client:  # reads go on, audited in the reserve
                    listed = client.get("/v1/headless/themes")
                    assert listed.status_code == 200, listed.text
                health = _health(server, install.metrics_token)
                assert health["status"] == "ok" and health["checks"]["disk"] == "full", health
                anonymous = httpx.get(f"{server.url}/health", timeout=10).json()
                assert "checks" not in anonymous, anonymous
            else:  # no room for an audit entry: a read fails too, with the same clear answer
                with server.client(install.test_key) as client:
                    listed = client.get("/v1/headless/themes")
                    assert listed.status_code == 507, listed.text
                    assert listed.json() == error_body(507, diskfull.MESSAGE)
            time.sleep(1.5)  # shipping ticks (every 0.2 s) and the refused load go on meanwhile

            os.unlink(filler)  # space returns
            load.phase = "freed"
            deadline = time.monotonic() + 15
            while load.count("after")[200] < 40 and time.monotonic() < deadline:
                if load.count("freed")[200]:
                    load.phase = "after"
                time.sleep(0.05)
        full, freed, after = load.count("full"), load.count("freed"), load.count("after")
        assert server.process.poll() is None and server.process.pid == pid, "the server did not stay up"

        # during the episode: 2xx or the D1 body with 507 and Retry-After, never anything else
        assert filled > 0
        assert full[507] >= 30, f"the full disk was not noticed: {full}"
        assert {status for _p, status, _h, _b in load.answers} <= {200, 507}, (full, freed)
        clear = [error_body(507, diskfull.MESSAGE)] + (
            [] if reserve_mb else [error_body(507, diskfull.UNCONFIRMED)]
        )
        for _phase, status, headers, body in load.answers:
            if status == 507:
                assert json.loads(body) in clear, body
                assert headers.get("retry-after") == diskfull.RETRY_AFTER
        # writes resumed without a restart, and every one of them succeeded
        assert after[200] >= 40 and set(after) == {200}, f"writes did not resume: {freed} then {after}"

        # one operator message per episode, not one per refused request
        assert len(_log_events(server, "disk full")) == 1, server.log()[-3000:]
        returned = _log_events(server, "disk space available again")
        assert len(returned) == 1 and returned[0]["level"] == "warning"
        assert _health(server, install.metrics_token)["checks"]["disk"] == "ok"
        if reserve_mb:
            assert reserve.stat().st_size == reserve_mb << 20, "the reserve was not re-made"
        assert install.test_key.split(":")[-1] not in server.log()

        # every write that got a 2xx is there
        with server.client(install.test_key) as client:
            themes = {t["id"]: t["name"] for t in all_pages(client, "/v1/headless/themes")}
        missing = {i: n for i, n in load.acked.items() if themes.get(i) != n}
        assert not missing, f"{len(missing)} acknowledged writes are missing"
        assert len(load.acked) >= 80  # at least 40 before the episode and 40 after it (loaded machines get no more)

        server.stop()  # graceful: ships the rest of the change log
        assert server.process.returncode == 0, server.log()[-2000:]
        copy = tmp_path / "after"
        shutil.copytree(Path(f"/proc/{holder.pid}/root") / mount.relative_to("/"), copy, symlinks=True)
    finally:
        server.stop()
        if holder is not None:
            os.kill(holder.pid, signal.SIGTERM)  # our own child, by pid
            holder.wait()

    runtime = open_runtime(config.load(copy))
    try:
        databases = [runtime.control, runtime.audit.database]
        databases += [runtime.environment(install.workspace_id, env) for env in ("test", "production")]
        for database in databases:
            assert fetch_one(database.read(), "PRAGMA integrity_check") == {"integrity_check": "ok"}, (
                database.name
            )
    finally:
        runtime.close()
    assert "chain intact" in cli("audit", "verify", data_dir=copy).stdout
    assert cli("doctor", data_dir=copy).returncode == 0
    verify = cli("backup", "verify", data_dir=copy, check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "matches live" in verify.stdout


GROUP_SCRIPT = """
import json, os, sys
from pathlib import Path
from appliance.storage.database import Database
mnt = Path(sys.argv[1])
db = Database(mnt / "a.db", b"k" * 32, name="a")
db.write(lambda d: d.execute("PRAGMA cache_size = 5"), transactional=False)  # spill pages mid-transaction
db.write(lambda d: d.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
with open(mnt / "filler", "wb", buffering=0) as f:
    try:
        while True:
            f.write(b"x" * 4096)
    except OSError:
        pass
os.truncate(mnt / "filler", os.path.getsize(mnt / "filler") - 200_000)
def job(i):
    return lambda d: d.execute("INSERT INTO t (v) VALUES (?)", [f"{i}:" + "y" * 8000]).lastrowid
futures = [db.submit(job(i)) for i in range(200)]
acked, failed = {}, []
for i, future in enumerate(futures):
    try:
        acked[future.result()] = i
    except Exception as exc:
        failed.append(type(exc).__name__)
os.unlink(mnt / "filler")
rows = {r[0]: r[1] for r in db.read().execute("SELECT id, v FROM t")}
db.write(lambda d: d.execute("INSERT INTO t (v) VALUES ('after')"))
print(json.dumps({"acked": len(acked), "failed": sorted(set(failed)), "rows": len(rows),
                  "lost": [k for k, i in acked.items() if not rows.get(k, "").startswith(f"{i}:")],
                  "alive": db._thread.is_alive()}))
"""


def test_a_server_started_on_a_full_disk_serves_reads_and_resumes_writes(tmp_path: Path) -> None:
    """Restarting the service after the disk filled: it starts (the reserve a previous run left is
    given back first), reads and their audit entries work, writes get 507, and writes resume once
    space is freed, without another restart."""
    reason = _namespaces_work(tmp_path)
    if reason:
        pytest.skip(reason)
    install = init_data_dir(tmp_path / "source")
    (install.data_dir / diskfull.RESERVE_FILE).write_bytes(b"\0" * (8 << 20))  # left by an earlier run
    mount = tmp_path / "mnt"
    mount.mkdir()
    env = {"APPLIANCE_STORAGE_DISK_RESERVE_MB": "8"}
    server = start_server(mount, env=env, wrap=_in_tmpfs(install.data_dir, mount, full_at_start=True))
    try:
        inside = Path(f"/proc/{server.process.pid}/root") / mount.relative_to("/")
        assert (inside / "filler").stat().st_size > (TMPFS_MB - 10) << 20, "the disk was not full at start"
        assert not (inside / diskfull.RESERVE_FILE).exists(), "the reserve was not given back"
        assert _log_events(server, "disk full")[0]["where"] == "start"
        with server.client(install.test_key) as client:
            listed = client.get("/v1/headless/courses")
            assert listed.status_code == 200, listed.text
            refused = client.post("/v1/headless/themes", json={"name": "while full"})
            assert refused.status_code == 507, refused.text
            assert refused.json() == error_body(507, diskfull.MESSAGE)
            (inside / "filler").unlink()
            deadline = time.monotonic() + 15
            while True:
                created = client.post("/v1/headless/themes", json={"name": "after"})
                if created.status_code == 200 or time.monotonic() > deadline:
                    break
                assert created.status_code == 507, created.text
                time.sleep(0.2)
            assert created.status_code == 200, created.text
            assert client.get(f"/v1/headless/themes/{created.json()['id']}").status_code == 200
        assert (inside / diskfull.RESERVE_FILE).stat().st_size == 8 << 20, "the reserve was not re-made"
    finally:
        server.stop()
    assert "Traceback" not in server.log(), server.log()[-3000:]


def test_a_group_commit_hit_by_disk_full_fails_as_one(tmp_path: Path) -> None:
    """SQLITE_FULL mid-transaction rolls the whole group back: no job may then autocommit alone."""
    reason = _namespaces_work(tmp_path)
    if reason:
        pytest.skip(reason)
    mount = tmp_path / "m"
    mount.mkdir()
    script = f'mount -t tmpfs -o size=4m tmpfs "{mount}" && exec "$@"'
    result = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
            sys.executable,
            "-c",
            GROUP_SCRIPT,
            str(mount),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr[-2000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["failed"] == ["DiskFull"], outcome
    assert outcome["rows"] == outcome["acked"] and not outcome["lost"], outcome  # no unacknowledged rows
    assert outcome["alive"], outcome
