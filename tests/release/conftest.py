"""Release bundles made with a throwaway signing key, stand-in binaries and a real data directory.

The upgrade logic is tested with tiny stand-in "binaries" (Python scripts that answer `--version`
and serve `/health`, or fail it), so the whole upgrade, rollback included, runs in seconds; the real
one-file binary is built and run by tests/test_binary.py.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from appliance.release import bundle, signing
from tests.helpers import REPO, cli, init_data_dir

MANIFEST = REPO / "models" / "manifest.json"

STAND_IN = '''#!{python}
"""A stand-in for the one-file binary: `--version`, and `serve` answering /health with {status}."""
import http.server, os, pathlib, sys

args = sys.argv[1:]
if args == ["--version"]:
    print("appliance {version}")
    sys.exit(0)
if args[:1] == ["serve"]:
    data = pathlib.Path(args[args.index("--data-dir") + 1])
    if {status} != 200:  # a release whose migration wrecks the control database, then fails /health
        (data / "control.db").write_bytes(os.urandom(16384))

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response({status})
            self.end_headers()
            self.wfile.write(b"{{}}")

        def log_message(self, *args):
            pass

    http.server.HTTPServer(("127.0.0.1", int(args[args.index("--port") + 1])), Health).serve_forever()
sys.exit(2)
'''


def stand_in(path: Path, version: str, status: int = 200, python: str = sys.executable) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(STAND_IN.format(python=python, version=version, status=status))
    path.chmod(0o755)
    return path


@dataclass
class Keys:
    private: Path
    public: Path
    other_private: Path  # a key this appliance does not trust


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    d = tmp_path_factory.mktemp("release-keys")
    signing.generate(d / "dev.key", d / "dev.pub")
    signing.generate(d / "other.key", d / "other.pub")
    return Keys(d / "dev.key", d / "dev.pub", d / "other.key")


def make_bundle(
    out: Path, binary: Path, key: Path, version: str = "0.2.0", released: dt.datetime | None = None
) -> Path:
    released = released or dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    return bundle.build(binary, MANIFEST, version, released, signing.load_private(key), out)


def raw_bundle(
    out: Path,
    members: list[tuple[str, bytes | tarfile.TarInfo]],
    key: Path | None,
    sums_for: list[str] | None = None,
) -> Path:
    """A hand-made tar: `members` as given (bytes: a regular file; TarInfo: written as is), a
    SHA256SUMS over the regular files named in `sums_for` (default all of them) and, with `key`,
    its signature: the way to make bundles the builder never would."""
    files = {name: data for name, data in members if isinstance(data, bytes)}
    chosen = sums_for if sums_for is not None else list(files)
    sums = bundle.checksums({n: files[n] for n in chosen})
    entries = [*members, (bundle.SUMS, sums)]
    if key is not None:
        entries.append((bundle.SIGNATURE, signing.sign(sums, signing.load_private(key))))
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in entries:
            if isinstance(data, tarfile.TarInfo):
                tar.addfile(data)
                continue
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


def release_json(version: str = "0.2.0", days_ago: float = 30) -> bytes:
    released = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
    return f'{{"format": 1, "version": "{version}", "released": "{bundle.iso(released)}"}}'.encode()


@dataclass
class Installed:
    data_dir: Path
    binary: Path  # the installed stand-in (version 0.1.0)
    env: dict[str, str]  # trusts the throwaway key through upgrades.dev_key

    def upgrade(self, bundle_path: Path, *extra: str, env: dict[str, str] | None = None) -> tuple[int, str]:
        result = cli(
            "upgrade", str(bundle_path), "--install-path", str(self.binary), "--timeout", "20", *extra,
            data_dir=self.data_dir, env={**self.env, **(env or {})}, check=False,
        )
        return result.returncode, result.stdout + result.stderr

    def audit(self) -> list[str]:
        import json

        out = cli("audit", "export", data_dir=self.data_dir).stdout
        return [f"{e['route']} | {e.get('target') or ''}" for e in map(json.loads, out.splitlines())]


def _installed(directory: Path, keys: Keys) -> Installed:
    install = init_data_dir(directory / "data")
    binary = stand_in(directory / "bin" / "appliance", "0.1.0")
    return Installed(install.data_dir, binary, {"APPLIANCE_UPGRADES_DEV_KEY": str(keys.public)})


@pytest.fixture()
def installed(tmp_path: Path, keys: Keys) -> Installed:
    return _installed(tmp_path, keys)


@pytest.fixture(scope="module")
def untouched(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> Installed:
    """One installation shared by the tests that must leave it as it was (each checks that it did)."""
    return _installed(tmp_path_factory.mktemp("untouched"), keys)


def fingerprint(directory: Path) -> dict[str, str]:
    """Every file under `directory` and its sha256, except the audit log (a refusal is audited)."""
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and not p.name.startswith("audit.")
    }
