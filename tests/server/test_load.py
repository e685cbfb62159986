"""Concurrent load: 32 clients mixing reads and writes; no 500, no lost audit entry."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from tests.helpers import Install, cli, start_server


def test_mixed_concurrent_load(fresh_install: Install) -> None:
    srv = start_server(fresh_install.data_dir)
    try:
        before = len(cli("audit", "export", data_dir=fresh_install.data_dir).stdout.splitlines())

        def worker(n: int) -> list[int]:
            statuses = []
            with srv.client(fresh_install.test_key) as c:
                for i in range(12):
                    if i % 4 == 0:
                        r = c.post("/v1/headless/themes", json={"name": f"load-{n}-{i}"})
                    elif i % 4 == 1:
                        r = c.get("/v1/headless/courses/1")
                    else:
                        r = c.get("/v1/headless/courses")
                    statuses.append(r.status_code)
            return statuses

        with ThreadPoolExecutor(32) as pool:
            statuses = [s for result in pool.map(worker, range(32)) for s in result]
    finally:
        srv.stop()
    assert len(statuses) == 32 * 12
    assert set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
    lines = cli("audit", "export", data_dir=fresh_install.data_dir).stdout.splitlines()
    entries = [json.loads(line) for line in lines[before:]]
    assert len(entries) == len(statuses)
    assert sum(1 for e in entries if e["method"] == "POST") == 32 * 3
    assert cli("audit", "verify", data_dir=fresh_install.data_dir).returncode == 0
    srv2 = start_server(fresh_install.data_dir)
    try:
        names = {t["name"] for t in srv2.client(fresh_install.test_key).get("/v1/headless/themes").json()}
    finally:
        srv2.stop()
    assert {f"load-{n}-{i}" for n in range(32) for i in (0, 4, 8)} <= names
