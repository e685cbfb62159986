"""`appliance serve --workers 2`: revocation seen by every worker on its next request, one verifiable
audit chain under concurrent writes, no acknowledged write lost (clean stop or kill -9), a job's
events and cancel through any worker, one rate limit and one /metrics sum across the workers, a
rekey with nothing refused; a worker killed mid-job fails its job at once, and a worker that keeps
dying is restarted after a growing pause; and `serve` runs one worker per core unless told."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from appliance import config
from appliance.runtime import open_runtime
from appliance.server.workers import RESTART_MAX, RESTART_PAUSE, STABLE_AFTER, RestartBackoff, worker_count
from appliance.storage.database import fetch_all
from tests.helpers import Install, Server, cli, create_key, init_data_dir, start_server

HIGH_LIMITS = {"APPLIANCE_LIMITS_RATE_PER_SECOND": "100000", "APPLIANCE_LIMITS_RATE_BURST": "100000"}


def worker_pids(server: Server) -> list[int]:
    """The pids of the running workers, from the supervisor's log."""
    started = [int(m) for m in re.findall(r'"msg": "worker started", "worker": \d+, "pid": (\d+)', server.log())]
    return [pid for pid in started if Path(f"/proc/{pid}").exists()]


def serving_pid(port: int, client_port: int, pids: list[int]) -> int:
    """The worker process holding the server side of the connection from `client_port`."""
    wanted = f"{port:04X}", f"{client_port:04X}"
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1].split(":")[1], fields[2].split(":")[1]
        if (local, remote) == wanted:
            inode = fields[9]
    assert inode is not None, "the connection is not in /proc/net/tcp"
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    raise AssertionError("no worker holds the connection")


def one_connection_per_worker(server: Server, key: str, pids: list[int]) -> dict[int, httpx.Client]:
    """Open keep-alive connections until every worker holds one; each has answered one request."""
    held: dict[int, httpx.Client] = {}
    spare: list[httpx.Client] = []
    for _ in range(200):
        client = server.client(key)
        response = client.get("/v1/headless/courses")
        assert response.status_code == 200
        stream = response.extensions["network_stream"]
        client_port = stream.get_extra_info("socket").getsockname()[1]
        pid = serving_pid(server.port, client_port, pids)
        if pid in held:
            spare.append(client)
        else:
            held[pid] = client
        if len(held) == len(pids):
            break
    for client in spare:
        client.close()
    assert set(held) == set(pids), "the kernel never handed a connection to every worker"
    return held


def test_a_revoked_key_and_a_removed_entitlement_are_refused_by_every_worker(fresh_install: Install) -> None:
    data_dir = fresh_install.data_dir
    key = create_key(data_dir, fresh_install.workspace_id, "test")
    server = start_server(data_dir, "--workers", "2", env=HIGH_LIMITS)
    try:
        pids = worker_pids(server)
        assert len(pids) == 2
        clients = one_connection_per_worker(server, key, pids)
        for client in clients.values():  # each worker has verified (and cached) the key
            assert client.get("/v1/headless/courses").status_code == 200
        listing = cli("key", "list", "--workspace", str(fresh_install.workspace_id), data_dir=data_dir).stdout
        key_id = next(line.split("\t")[0] for line in listing.splitlines() if f"...{key[-4:]}" in line)
        cli("key", "revoke", key_id, data_dir=data_dir)
        for pid, client in clients.items():  # the very next request, on the connection each worker holds
            assert client.get("/v1/headless/courses").status_code == 401, f"worker {pid} still accepts the key"

        other = one_connection_per_worker(server, fresh_install.test_key, pids)
        cli("workspace", "entitlement", "--workspace", str(fresh_install.workspace_id), "api", "off", data_dir=data_dir)
        for pid, client in other.items():
            assert client.get("/v1/headless/courses").status_code == 403, f"worker {pid} ignores the entitlement"
        for client in [*clients.values(), *other.values()]:
            client.close()
    finally:
        server.stop()


Acknowledged = list[tuple[int, str, str]]


def _write_themes(server: Server, key: str, stop: threading.Event, acknowledged: Acknowledged) -> list[int]:
    """POST themes on a new connection each time (spread over the workers) until `stop`; keep what was
    acknowledged (theme id, name, request id). Returns the statuses of the answers that came back."""
    statuses = []
    n = 0
    while not stop.is_set():
        n += 1
        name = f"w-{threading.get_ident()}-{n}"
        try:
            with server.client(key, timeout=10) as client:
                response = client.post("/v1/headless/themes", json={"name": name})
        except httpx.TransportError:
            continue  # no answer (the worker was killed): not acknowledged
        statuses.append(response.status_code)
        if response.status_code == 200:
            acknowledged.append((response.json()["id"], name, response.headers["x-request-id"]))
    return statuses


def _check_durable(install: Install, acknowledged: Acknowledged) -> None:
    """Every acknowledged theme is in the database, and its request in the audit log, which verifies."""
    verify = cli("audit", "verify", data_dir=install.data_dir, check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    runtime = open_runtime(config.load(install.data_dir))
    try:
        db = runtime.environment(install.workspace_id, "test").read()
        # by id and name: a lost row's id is given to the next theme written
        stored = {(row["id"], row["name"]) for row in fetch_all(db, "SELECT id, name FROM themes")}
        audited = {row["request_id"] for row in runtime.audit.rows() if row["method"] == "POST"}
    finally:
        runtime.close()
    assert not [(t, n) for t, n, _ in acknowledged if (t, n) not in stored], "acknowledged themes are missing"
    assert not [r for _, _, r in acknowledged if r not in audited], "acknowledged writes have no audit entry"


def test_concurrent_writes_on_two_workers_keep_one_audit_chain_and_every_acknowledged_write(
    fresh_install: Install,
) -> None:
    server = start_server(fresh_install.data_dir, "--workers", "2", env=HIGH_LIMITS)
    acknowledged: Acknowledged = []
    stop = threading.Event()
    try:
        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(_write_themes, server, fresh_install.test_key, stop, acknowledged) for _ in range(8)]
            time.sleep(6)
            stop.set()
            statuses = [s for f in futures for s in f.result()]
    finally:
        server.stop()
    assert server.process.returncode == 0
    assert len(acknowledged) >= 40, f"only {len(acknowledged)} writes in 6 s"
    assert set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}  # no write refused for contention
    _check_durable(fresh_install, acknowledged)
    assert '"msg": "stopped"' in server.log()


def test_kill_9_of_one_worker_loses_no_acknowledged_write(fresh_install: Install) -> None:
    server = start_server(fresh_install.data_dir, "--workers", "2", env=HIGH_LIMITS)
    acknowledged: Acknowledged = []
    stop = threading.Event()
    try:
        victim = worker_pids(server)[0]
        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(_write_themes, server, fresh_install.test_key, stop, acknowledged) for _ in range(8)]
            time.sleep(2)
            before = len(acknowledged)
            os.kill(victim, signal.SIGKILL)
            time.sleep(4)  # the other worker goes on; the supervisor starts a new one
            stop.set()
            for f in futures:
                f.result()
        after = len(acknowledged)
        survivors = worker_pids(server)
        assert victim not in survivors and len(survivors) == 2, survivors  # restarted
    finally:
        server.stop()
    assert before > 0 and after > before + 10, (before, after)  # writes went on after the kill
    _check_durable(fresh_install, acknowledged)
    log = server.log()
    assert "worker exited; starting it again" in log
    assert f"\"code\": {-signal.SIGKILL}" in log  # the exit code the supervisor saw


def on_worker(server: Server, key: str, pid: int, pids: list[int]) -> httpx.Client:
    """A client whose keep-alive connection the worker `pid` holds (use it at once: an idle
    connection is closed after uvicorn's keep-alive timeout, and a new one may land anywhere)."""
    for _ in range(200):
        client = server.client(key)
        response = client.get("/v1/headless/courses")
        assert response.status_code == 200
        if served_by(server, response, pids) == pid:
            return client
        client.close()
    raise AssertionError(f"the kernel never handed a connection to worker {pid}")


def served_by(server: Server, response: httpx.Response, pids: list[int]) -> int:
    stream = response.extensions["network_stream"]
    return serving_pid(server.port, stream.get_extra_info("socket").getsockname()[1], pids)


def _follow(server: Server, key: str, pid: int, pids: list[int], job_id: int, on_state: Any = None) -> list[dict[str, Any]]:
    """A job's events through worker `pid`, to its final event; `on_state` runs at the first."""
    seen: list[dict[str, Any]] = []
    with closing(on_worker(server, key, pid, pids)) as client, client.stream(
        "GET", f"/v1/headless/jobs/{job_id}/events", timeout=600
    ) as stream:
        assert served_by(server, stream, pids) == pid
        for line in stream.iter_lines():
            if not line.startswith("data:"):
                continue
            event = json.loads(line[5:])
            if event["type"] != "ping":  # a quiet while on a loaded machine
                seen.append(event)
            if event["type"] == "state" and on_state is not None:
                on_state()
            if seen[-1]["type"] in ("succeeded", "failed", "cancelled"):
                break
    return seen


def test_a_job_started_on_one_worker_is_streamed_and_cancelled_through_the_other(fresh_install: Install) -> None:
    server = start_server(fresh_install.data_dir, "--workers", "2", env=HIGH_LIMITS)
    key = fresh_install.test_key
    try:
        pids = worker_pids(server)
        first, second = pids
        async_job = {"Prefer": "respond-async"}

        def start(path: str, body: dict[str, Any]) -> int:
            with closing(on_worker(server, key, first, pids)) as client:
                started = client.post(path, json=body, headers=async_job)
                assert started.status_code == 202, started.text
                assert served_by(server, started, pids) == first
                return int(started.json()["id"])

        # a one-screen job run by the first worker, followed through the second: its progress
        # (the generated screen) arrives there before its end
        with server.client(key) as api:
            course_id = api.get("/v1/headless/courses").json()[0]["id"]
        job_id = start(f"/v1/headless/generate/course/{course_id}/screen", {"type": "list", "prompt": "Lifting checks"})
        seen = _follow(server, key, second, pids, job_id)
        assert [e["type"] for e in seen] == ["state", "progress", "succeeded"], [e["type"] for e in seen]
        assert seen[1]["data"]["screen"]["type"] == "list"

        # a course job run by the first worker, cancelled through the second as soon as it is followed
        job_id = start("/v1/headless/generate/course", {"prompt": "Safe lifting", "screenCount": 2})

        def cancel() -> None:
            with closing(on_worker(server, key, second, pids)) as client:
                cancelled = client.post(f"/v1/headless/jobs/{job_id}/cancel")
                assert cancelled.status_code == 200 and served_by(server, cancelled, pids) == second

        seen = _follow(server, key, second, pids, job_id, on_state=cancel)
        assert seen[-1]["type"] == "cancelled", [e["type"] for e in seen]
        with server.client(key) as api:
            assert api.get(f"/v1/headless/jobs/{job_id}").json()["status"] == "cancelled"
    finally:
        server.stop()


# -- one rate limit, one /metrics and rekey across the workers: one server for the three tests -----
BURST = 50
SHARED_LIMITS = {
    "APPLIANCE_LIMITS_RATE_PER_SECOND": "0.001",  # no refill while the test runs: the burst is the limit
    "APPLIANCE_LIMITS_RATE_BURST": str(BURST),
}


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Install]]:
    install = init_data_dir(tmp_path_factory.mktemp("workers") / "data")
    server = start_server(install.data_dir, "--workers", "2", env=SHARED_LIMITS)
    yield server, install
    server.stop()


def _metric(text: str, name: str) -> int:
    match = re.search(rf"^{re.escape(name)} (\d+)$", text, re.M)
    return int(match.group(1)) if match else 0


def test_the_rate_limit_is_one_across_workers_and_metrics_are_their_sum(limited: tuple[Server, Install]) -> None:
    server, install = limited
    caller = create_key(install.data_dir, install.workspace_id, "test")  # a bucket of its own
    pids = worker_pids(server)
    clients = one_connection_per_worker(server, install.test_key, pids)
    counted = {pid: 0 for pid in pids}
    for n in range(BURST):  # the burst, taken in turns through both workers
        pid = pids[n % 2]
        response = clients[pid].get("/v1/headless/courses", headers={"Authorization": caller})
        assert response.status_code == 200, (n, response.status_code)
        assert served_by(server, response, pids) == pid
        counted[pid] += 1
    for pid, client in clients.items():  # spent in total: refused by each worker
        refused = client.get("/v1/headless/courses", headers={"Authorization": caller})
        assert refused.status_code == 429, f"worker {pid} allowed request {BURST + 1}"
    assert counted == {pid: BURST // 2 for pid in pids}

    scrapes = [client.get("/metrics", headers={"Authorization": f"Bearer {install.metrics_token}"}).text
               for client in clients.values()]
    for scrape in scrapes:  # through either worker: the sum of both (each refused one request)
        assert _metric(scrape, 'appliance_requests_total{method="GET",status="429"}') == 2
        assert _metric(scrape, "appliance_rate_limited_total") == 2
        assert _metric(scrape, 'appliance_requests_total{method="GET",status="200"}') >= BURST + 2
        assert _metric(scrape, "appliance_request_duration_seconds_count") >= BURST + 4
    for client in clients.values():
        client.close()


def test_a_rekey_under_two_workers_refuses_nothing_and_every_worker_reads_and_writes_after(
    limited: tuple[Server, Install],
) -> None:
    server, install = limited
    before = worker_pids(server)
    caller = create_key(install.data_dir, install.workspace_id, "test")  # its own bucket of BURST
    done = threading.Event()
    statuses: list[int] = []

    def meanwhile() -> None:  # a new connection each time: whichever worker (or the backlog) takes it
        while not done.is_set() and len(statuses) < BURST // 2:
            with server.client(caller, timeout=60) as client:
                statuses.append(client.get("/v1/headless/courses").status_code)

    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(meanwhile)
        rekeyed = cli("keys", "rekey", "--db", f"ws{install.workspace_id}-test", data_dir=install.data_dir)
        done.set()
        running.result()
    assert "re-encrypted under a new key by the running server" in rekeyed.stdout
    assert statuses and set(statuses) == {200}, statuses  # nothing refused while the workers changed
    after = worker_pids(server)

    writer = create_key(install.data_dir, install.workspace_id, "test")
    for pid in after:
        with closing(on_worker(server, writer, pid, after)) as client:
            assert client.get("/v1/headless/courses").status_code == 200
            wrote = client.post("/v1/headless/themes", json={"name": f"after rekey {pid}"})
            assert wrote.status_code == 200, wrote.text
            assert served_by(server, wrote, after) == pid
    assert len(after) == 2 and not set(after) & set(before), (before, after)  # restarted on the new key
    runtime = open_runtime(config.load(install.data_dir))
    try:  # the file opens with the keyring's new key, with both writes in it
        names = {row["name"] for row in fetch_all(runtime.environment(install.workspace_id, "test").read(),
                                                  "SELECT name FROM themes")}
        assert {f"after rekey {pid}" for pid in after} <= names
    finally:
        runtime.close()


def test_serve_runs_one_worker_per_core_unless_told() -> None:
    from appliance.cli import build_parser

    parser = build_parser()
    cores = len(os.sched_getaffinity(0))
    assert worker_count(parser.parse_args(["serve"]).workers) == cores
    assert worker_count(parser.parse_args(["serve", "--workers", "0"]).workers) == cores
    assert worker_count(parser.parse_args(["serve", "--workers", "1"]).workers) == 1


def test_a_worker_killed_mid_job_fails_its_job_at_once_and_is_restarted(fresh_install: Install) -> None:
    server = start_server(fresh_install.data_dir, "--workers", "2", env=HIGH_LIMITS)
    key = fresh_install.test_key
    try:
        supervisor = server.process.pid
        pids = worker_pids(server)
        victim = pids[0]
        with closing(on_worker(server, key, victim, pids)) as client:
            started = client.post("/v1/headless/generate/course", json={"prompt": "Safe lifting", "screenCount": 10},
                                  headers={"Prefer": "respond-async"})
            assert started.status_code == 202 and served_by(server, started, pids) == victim, started.text
            job_id = int(started.json()["id"])
        with closing(on_worker(server, key, pids[1], pids)) as api:  # a connection the kill leaves open
            deadline = time.monotonic() + 120
            while api.get(f"/v1/headless/jobs/{job_id}").json()["status"] != "running":
                assert time.monotonic() < deadline, "the job never ran"
                time.sleep(0.05)
            os.kill(victim, signal.SIGKILL)
            # the other worker answers; the supervisor (not restarted) records the job's end
            deadline = time.monotonic() + 30
            while (job := api.get(f"/v1/headless/jobs/{job_id}").json())["status"] == "running":
                assert time.monotonic() < deadline, "the killed worker's job stayed running"
                time.sleep(0.1)
        assert job["status"] == "failed", job
        assert "server process running it stopped" in job["error"] and job["finished"], job
        deadline = time.monotonic() + 30
        while len(survivors := worker_pids(server)) < 2:
            assert time.monotonic() < deadline, survivors
            time.sleep(0.1)
        assert victim not in survivors and server.process.poll() is None and server.process.pid == supervisor
    finally:
        server.stop()
    assert '"failed_jobs": 1' in server.log()


def test_a_worker_that_keeps_dying_soon_after_its_start_waits_longer_each_time() -> None:
    backoff = RestartBackoff()
    quick = STABLE_AFTER / 4
    pauses = [backoff.pause(quick) for _ in range(8)]
    assert pauses[:3] == [RESTART_PAUSE, 2 * RESTART_PAUSE, 4 * RESTART_PAUSE], pauses
    assert pauses == sorted(pauses) and pauses[-1] == RESTART_MAX, pauses  # bounded
    # a worker that ran a while died of something new: restarted after the short pause again
    assert backoff.pause(STABLE_AFTER + 1) == RESTART_PAUSE
    assert backoff.pause(quick) == RESTART_PAUSE
