"""kill -9 of a real `appliance serve` during a write load, then restart: nothing acknowledged is lost.

Three variants: a plain write load, the same while snapshots are taken back to back, and while the
change log is shipped every 20 ms. After each: every write that got a 2xx is there, the audit chain
verifies, every database opens (doctor), and the snapshot + log chain restores to the live state.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from appliance import config
from appliance.runtime import open_runtime
from tests.helpers import all_pages, cli, init_data_dir, start_server

VARIANTS = {
    "writes": {},
    "snapshot": {
        "APPLIANCE_BACKUP_SNAPSHOT_INTERVAL_HOURS": "0.00002",
        "APPLIANCE_BACKUP_SHIP_INTERVAL_SECONDS": "0.05",
    },
    "shipping": {"APPLIANCE_BACKUP_SHIP_INTERVAL_SECONDS": "0.02"},
}


def _load(url: str, key: str, acked: dict[int, str], stop: threading.Event, n: int) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": key}, timeout=10) as client:
        i = 0
        while not stop.is_set():
            name = f"durable-{n}-{i}"
            try:
                response = client.post("/v1/headless/themes", json={"name": name})
            except httpx.HTTPError:
                return  # the server died under us: this write was never acknowledged
            if response.status_code == 200:
                acked[response.json()["id"]] = name
            i += 1


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_kill_9_during_writes_loses_nothing_acknowledged(tmp_path: Path, variant: str) -> None:
    install = init_data_dir(tmp_path / "data")
    env = {"APPLIANCE_STORAGE_SYNCHRONOUS": "FULL", **VARIANTS[variant]}
    server = start_server(install.data_dir, env=env)
    acked: dict[int, str] = {}
    stop = threading.Event()
    threads = [
        threading.Thread(target=_load, args=(server.url, install.test_key, acked, stop, n)) for n in range(4)
    ]
    for t in threads:
        t.start()
    snapshots = install.data_dir / "backups" / f"ws{install.workspace_id}-test" / "snapshots"
    deadline = time.monotonic() + 30
    wanted = random.randint(60, 160)
    while len(acked) < wanted and time.monotonic() < deadline:
        time.sleep(0.01)
    if variant == "snapshot":  # kill while a snapshot file is being written, if we can catch one
        until = time.monotonic() + 3
        while time.monotonic() < until and not list(snapshots.glob(".tmp-*")):
            time.sleep(0.001)
    os.kill(server.process.pid, signal.SIGKILL)  # our own child, by pid
    server.process.wait()
    stop.set()
    for t in threads:
        t.join()
    assert len(acked) >= 40, f"the load did not get going ({len(acked)} writes)"

    restarted = start_server(install.data_dir, env=env)
    try:
        with restarted.client(install.test_key) as client:
            themes = {t["id"]: t["name"] for t in all_pages(client, "/v1/headless/themes")}
            assert client.post("/v1/headless/themes", json={"name": "after restart"}).status_code == 200
    finally:
        restarted.stop()
    missing = {i: n for i, n in acked.items() if themes.get(i) != n}
    assert not missing, f"{len(missing)} acknowledged writes lost after kill -9"
    assert not list(snapshots.glob(".tmp-*")), "a half-written snapshot was left behind"
    if variant == "snapshot":
        assert len(list(snapshots.glob("*.snap"))) >= 3, "snapshots were not running during the load"
    assert "chain intact" in cli("audit", "verify", data_dir=install.data_dir).stdout
    assert cli("doctor", data_dir=install.data_dir).returncode == 0
    verify = cli("backup", "verify", data_dir=install.data_dir, check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "matches live" in verify.stdout


# PRAGMA synchronous as SQLite reports it: 1 NORMAL, 2 FULL, 3 EXTRA. kill -9 above cannot tell them
# apart (the page cache survives a killed process, even with OFF), so the level is read off the
# writer connections the runtime opens: what a 2xx waits for before it is sent.
SYNCHRONOUS = {"NORMAL": 1, "FULL": 2, "EXTRA": 3}


@pytest.mark.parametrize("configured", [None, "NORMAL", "EXTRA"])
def test_the_configured_synchronous_level_reaches_every_writer_connection(
    tmp_path: Path, configured: str | None
) -> None:
    install = init_data_dir(tmp_path / "data")
    environ = {} if configured is None else {"APPLIANCE_STORAGE_SYNCHRONOUS": configured.lower()}
    expected = SYNCHRONOUS[configured or "FULL"]  # FULL when nothing is configured
    runtime = open_runtime(config.load(install.data_dir, environ=environ))
    try:
        databases = [runtime.control, runtime.audit.database]
        databases += [runtime.environment(install.workspace_id, env) for env in ("test", "production")]
        for database in databases:
            level = database.write(lambda w: w.execute("PRAGMA synchronous").fetchone()[0], transactional=False)
            assert level == expected, (database.name, level)
    finally:
        runtime.close()
