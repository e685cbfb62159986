"""The air-gap proof: the appliance does its work with no network but loopback, and never tries to
open a socket to any other address.

tests/airgap_driver.py runs in a network namespace of its own (`unshare -n`: only a loopback
interface exists) under `strace -f -e trace=connect`, which records every connect() of the driver
and of every process below it: the server, its model process, the document reader, the CLI's
backup commands. The driver serves, generates a course with the small model, uploads a document,
has a webhook delivered to an allowed receiver (on loopback: an air-gapped network's receivers are
internal) and takes and verifies a backup; this test checks each result, then that every recorded
connect() went to loopback or a local (AF_UNIX/AF_NETLINK) socket.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

MODEL = REPO / "models" / "smollm2-135m-instruct-q4_1.gguf"
LOCAL_FAMILIES = {"AF_UNIX", "AF_LOCAL", "AF_NETLINK", "AF_UNSPEC"}


def _why_not() -> str | None:
    missing = [tool for tool in ("unshare", "strace", "ip") if shutil.which(tool) is None]
    if os.geteuid() != 0:
        return "needs root for `unshare -n` (CI runs as root)"
    if missing:
        return f"needs {', '.join(missing)} (make test-tools installs them)"
    if not MODEL.is_file():
        return f"needs {MODEL.name} (make test installs it)"
    return None


def outward_connects(trace: str) -> tuple[list[str], int]:
    """(connect() calls to anything but loopback or a local socket, how many went to loopback)."""
    outward, loopback = [], 0
    for line in trace.splitlines():
        if "connect(" not in line or "sa_family=" not in line:
            continue
        family = re.search(r"sa_family=(AF_\w+)", line)
        name = family.group(1) if family else "?"
        if name in LOCAL_FAMILIES:
            continue
        if name == "AF_INET":
            address = re.search(r'inet_addr\("([\d.]+)"\)', line)
            if address and address.group(1).startswith("127."):
                loopback += 1
                continue
        if name == "AF_INET6":
            address = re.search(r'inet_pton\(AF_INET6, "([^"]+)"', line)
            if address and address.group(1) in {"::1", "::ffff:127.0.0.1"}:
                loopback += 1
                continue
        outward.append(line.strip())
    return outward, loopback


def test_outward_connects_are_recognised() -> None:
    """The parser itself: strace's own lines for loopback, local and outward connects."""
    trace = "\n".join([
        '101 connect(5, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("127.0.0.1")}, 16) = 0',
        '101 connect(6, {sa_family=AF_UNIX, sun_path="/run/x"}, 110) = 0',
        '102 connect(7, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), '
        'inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = 0',
        '103 connect(8, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.255.255.53")}, 16) '
        '= -1 ENETUNREACH (Network is unreachable)',
        '104 connect(9, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), '
        'inet_pton(AF_INET6, "2001:db8::1", &sin6_addr), sin6_scope_id=0}, 28) = -1 ENETUNREACH',
    ])
    outward, loopback = outward_connects(trace)
    assert loopback == 2 and [line.split()[0] for line in outward] == ["103", "104"]


def test_every_feature_works_with_only_loopback_and_nothing_reaches_out(tmp_path: Path) -> None:
    why = _why_not()
    if why:
        pytest.skip(f"AIR-GAP PROOF NOT RUN: {why}")
    trace, results = tmp_path / "connect.trace", tmp_path / "results.json"
    command = [
        "unshare", "--net", "--",
        "strace", "-f", "-qq", "--seccomp-bpf", "-e", "trace=connect", "-o", str(trace), "--",
        sys.executable, "-m", "tests.airgap_driver", str(tmp_path), str(results),
    ]
    run = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    got = json.loads(results.read_text())
    print(f"air-gap proof: {got}")

    assert got["course"] == {"status": 200, "screens": 1}, got
    assert got["document"] == {"status": 201, "type": "text"}, got
    assert got["webhook_register"] == 200 and got["webhook_test"] == 200, got
    # the generated course's course.created event, and the test delivery (the endpoint's first event)
    assert got["webhook_received"] == ["course.created", "course.created"], got
    assert got["webhook_deliveries"] == ["delivered", "delivered"], got
    assert got["backup_now"] == 0 and got["backup_verify"] == 0 and got["health"] == 200, got

    outward, loopback = outward_connects(trace.read_text())
    assert loopback > 10, "the trace recorded no loopback connects: it did not see the processes"
    assert outward == [], "connect() to a non-loopback address:\n" + "\n".join(outward)
