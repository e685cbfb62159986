"""The server installer: scripts parse, the unit file verifies, dry runs do what they say.

Nothing here installs into the system: install.sh and upgrade.sh only ever run with --dry-run.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import REPO

INSTALLER = REPO / "installer"
SCRIPTS = ["install.sh", "upgrade.sh"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_parse(script: str) -> None:
    result = subprocess.run(["bash", "-n", str(INSTALLER / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_unit_file_verifies(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    unit = (INSTALLER / "appliance.service").read_text()
    for directive in ("NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "ReadWritePaths="):
        assert directive in unit
    # verify checks that ExecStart exists; the binary is not installed here, so point it at /bin/true.
    copy = tmp_path / "appliance.service"
    copy.write_text(unit.replace("/usr/local/bin/appliance", "/bin/true"))
    result = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "appliance.service" not in result.stderr, result.stderr


def fake_binary(tmp_path: Path) -> Path:
    binary = tmp_path / "appliance"
    binary.write_text("#!/bin/sh\necho 'appliance 9.9.9'\n")
    binary.chmod(0o755)
    return binary


def test_install_dry_run_plans_user_dirs_binary_unit_and_tls(tmp_path: Path) -> None:
    binary = fake_binary(tmp_path)
    result = subprocess.run(
        ["bash", str(INSTALLER / "install.sh"), "--dry-run", "--binary", str(binary), "--port", "9443"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "install -d -m 0700 -o appliance -g appliance /var/lib/appliance" in out
    assert "install -d -m 0700 -o appliance -g appliance /var/lib/appliance/models" in out  # the binary's models
    assert "/usr/local/bin/appliance" in out
    assert "APPLIANCE_SERVER_PORT=9443" in out
    assert "APPLIANCE_SERVER_HOST=127.0.0.1" in out
    assert "APPLIANCE_SERVER_TLS_CERT=/var/lib/appliance/tls/self-signed.crt" in out
    assert "systemctl enable appliance.service" in out
    assert "https://127.0.0.1:9443/health" in out


def test_install_refuses_a_missing_binary(tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", str(INSTALLER / "install.sh"), "--dry-run", "--binary", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "no binary" in result.stderr


def test_upgrade_checks_the_sha256_before_touching_anything(tmp_path: Path) -> None:
    binary = fake_binary(tmp_path)
    digest = hashlib.sha256(binary.read_bytes()).hexdigest()
    wrong = ("0" if digest[0] != "0" else "1") + digest[1:]
    bad = subprocess.run(
        ["bash", str(INSTALLER / "upgrade.sh"), str(binary), wrong, "--dry-run"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "sha256 mismatch" in bad.stderr and "nothing changed" in bad.stderr
    assert "systemctl" not in bad.stdout
    good = subprocess.run(
        ["bash", str(INSTALLER / "upgrade.sh"), str(binary), digest.upper(), "--dry-run"],
        capture_output=True,
        text=True,
    )
    assert good.returncode == 0, good.stderr
    steps = [line for line in good.stdout.splitlines() if line.startswith("+ ")]
    stop = next(i for i, s in enumerate(steps) if "systemctl stop" in s)
    keep = next(i for i, s in enumerate(steps) if "/usr/local/bin/appliance.prev" in s)
    start = next(i for i, s in enumerate(steps) if "systemctl start" in s)
    assert stop < keep < start
