"""Audit: one entry per request, and no request goes unlogged (decisions D6)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Install, Server, cli, start_server

HOLD_LOCK = """
import sys, time
from appliance import config
from appliance.runtime import AUDIT_KEY
from appliance.storage import crypto
from appliance.storage.database import connect
from appliance.storage.keyring import Keyring
data = config.resolve_data_dir(sys.argv[1])
ring = Keyring(data, crypto.load_master_key(data))
conn = connect(data / "audit.db", ring.get(AUDIT_KEY))
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
"""


@pytest.fixture()
def audit_server(fresh_install: Install) -> Iterator[Server]:
    srv = start_server(fresh_install.data_dir, env={"APPLIANCE_STORAGE_BUSY_TIMEOUT_MS": "500"})
    srv.extra["install"] = fresh_install
    yield srv
    srv.stop()


def _entries(data_dir: Path) -> list[dict]:  # type: ignore[type-arg]
    out = cli("audit", "export", data_dir=data_dir).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_one_entry_per_request(audit_server: Server) -> None:
    install: Install = audit_server.extra["install"]
    before = len(_entries(install.data_dir))
    c = audit_server.client(install.test_key)
    statuses = [
        c.get("/v1/headless/courses").status_code,
        c.get("/v1/headless/courses/1").status_code,
        c.get("/v1/headless/courses/77").status_code,
        audit_server.client().get("/v1/headless/courses").status_code,
        c.get("/nowhere").status_code,
    ]
    entries = _entries(install.data_dir)[before:]
    assert [e["status"] for e in entries] == statuses == [200, 200, 404, 401, 404]
    assert entries[1]["target"] == "course:1"
    assert entries[0]["workspace_id"] == install.workspace_id and entries[0]["environment"] == "test"
    assert len({e["request_id"] for e in entries}) == 5


def test_requests_fail_with_503_when_the_audit_log_cannot_be_written(audit_server: Server) -> None:
    install: Install = audit_server.extra["install"]
    c = audit_server.client(install.test_key)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(install.data_dir), "4"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        blocked = c.post("/v1/headless/themes", json={"name": "written while audit is down"})
        assert blocked.status_code == 503
        assert blocked.json()["code"] == "SERVICE_UNAVAILABLE"
        assert "audit" in blocked.json()["message"]
        read = c.get("/v1/headless/courses")  # a read is not answered either: its data would go unlogged
        assert read.status_code == 503 and "New starter" not in read.text
    finally:
        holder.wait(timeout=30)
    time.sleep(0.2)
    assert c.get("/v1/headless/courses").status_code == 200  # recovers once the audit log is writable
    names = [t["name"] for t in c.get("/v1/headless/themes").json()]
    assert "written while audit is down" not in names  # the refused write was not carried out
    assert cli("audit", "verify", data_dir=install.data_dir).returncode == 0
