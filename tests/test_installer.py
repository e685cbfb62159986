"""The server installer: scripts parse, the unit file verifies, dry runs do what they say.

Nothing here installs into the system: install.sh and upgrade.sh only ever run with --dry-run, and
uninstall.sh either without --apply (its default dry run) or with --root on a tree in a temporary
directory. What `appliance upgrade` does is tested in tests/release/.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import REPO

INSTALLER = REPO / "installer"
SCRIPTS = ["install.sh", "upgrade.sh", "uninstall.sh"]


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


def test_upgrade_dry_run_hands_the_bundle_to_the_installed_program(tmp_path: Path) -> None:
    bundle = tmp_path / "appliance-9.9.9.tar"
    bundle.write_bytes(b"not looked at by the script itself")
    result = subprocess.run(
        ["bash", str(INSTALLER / "upgrade.sh"), str(bundle), "--force", "--timeout", "30", "--dry-run"],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    planned = [line for line in result.stdout.splitlines() if line.startswith("+ ")]
    assert planned == [
        f"+ /usr/local/bin/appliance upgrade {bundle} --data-dir /var/lib/appliance --install-path "
        "/usr/local/bin/appliance --service appliance.service --timeout 30 --force"
    ], result.stdout
    old_form = subprocess.run(
        ["bash", str(INSTALLER / "upgrade.sh"), str(bundle), "ab" * 32, "--dry-run"], capture_output=True, text=True
    )
    assert old_form.returncode == 2 and "SHA256SUMS" in old_form.stderr, old_form.stderr
    missing = subprocess.run(
        ["bash", str(INSTALLER / "upgrade.sh"), str(tmp_path / "nope.tar"), "--dry-run"], capture_output=True, text=True
    )
    assert missing.returncode == 2 and "no file" in missing.stderr and "+ " not in missing.stdout


def _installed_tree(root: Path, backup_path: str = "") -> dict[str, bytes]:
    """What install.sh leaves, under `root`: unit, binary and its previous copy, /etc, data."""
    files = {
        "etc/systemd/system/appliance.service": b"[Unit]\n",
        "usr/local/bin/appliance": b"binary",
        "usr/local/bin/appliance.prev": b"old binary",
        "etc/appliance/appliance.env": b"APPLIANCE_SERVER_PORT=8443\n",
        "usr/local/share/doc/appliance/README.md": b"readme",
        "var/lib/appliance/master.key": b"k" * 32,
        "var/lib/appliance/keyring.json": b"{}",
        "var/lib/appliance/control.db": b"encrypted",
        "var/lib/appliance/workspaces/1/test.db": b"encrypted",
        "var/lib/appliance/appliance.toml": f'[backup]\npath = "{backup_path}"\n'.encode(),
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _uninstall(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(INSTALLER / "uninstall.sh"), *args], capture_output=True, text=True)


def test_uninstall_is_a_dry_run_by_default(tmp_path: Path) -> None:
    before = _installed_tree(tmp_path)
    result = _uninstall("--root", str(tmp_path), "--shred-data")
    assert result.returncode == 0, result.stderr
    assert "DRY RUN" in result.stdout and "nothing was changed" in result.stdout
    assert f"would run: rm -f {tmp_path}/usr/local/bin/appliance" in result.stdout
    assert f"would run: rm -rf {tmp_path}/var/lib/appliance" in result.stdout
    assert _tree(tmp_path) == before
    # on this machine, without --root: a plan of systemd and user steps, and nothing run
    plain = _uninstall()
    assert plain.returncode == 0 and "would run: systemctl disable --now appliance.service" in plain.stdout, plain
    assert "+ " not in plain.stdout


def test_uninstall_keeps_the_data_by_default(tmp_path: Path) -> None:
    before = _installed_tree(tmp_path)
    result = _uninstall("--root", str(tmp_path), "--apply")
    assert result.returncode == 0, result.stderr
    assert _tree(tmp_path) == {n: d for n, d in before.items() if n.startswith("var/lib/appliance/")}
    assert not (tmp_path / "etc/appliance").exists() and not (tmp_path / "usr/local/bin/appliance.prev").exists()


def test_uninstall_shreds_the_keys_first_then_the_data(tmp_path: Path) -> None:
    _installed_tree(tmp_path, backup_path="/srv/appliance-backups")
    conflicting = _uninstall("--root", str(tmp_path), "--keep-data", "--shred-data", "--apply")
    assert conflicting.returncode == 2 and "exclude each other" in conflicting.stderr
    result = _uninstall("--root", str(tmp_path), "--shred-data", "--apply")
    assert result.returncode == 0, result.stderr
    assert _tree(tmp_path) == {} and not (tmp_path / "var/lib/appliance").exists()
    steps = [line for line in result.stdout.splitlines() if line.startswith("+ ")]
    shred_key = next(i for i, s in enumerate(steps) if s.endswith("var/lib/appliance/master.key"))
    shred_all = next(i for i, s in enumerate(steps) if "-exec shred" in s)
    assert shred_key < shred_all
    assert "backups outside the data directory are NOT removed: /srv/appliance-backups" in result.stdout
