"""Releases: `release keygen|build|verify` (the release manager's side) and `upgrade` (the operator's)."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from appliance import config
from appliance.cli.common import CliError, Subparsers, command, passphrase
from appliance.release import bundle, signing
from appliance.release.upgrade import Options, Upgrade, UpgradeError
from appliance.runtime import open_runtime

MANIFEST = Path(__file__).resolve().parents[2] / "models" / "manifest.json"  # the source tree's manifest


def cmd_keygen(args: argparse.Namespace) -> int:
    private, public = Path(args.private_key), Path(args.public_key)
    if private.exists():
        raise CliError(f"{private} exists; a signing key is never overwritten")
    kid = signing.generate(private, public)
    print(f"key {kid}: private key {private} (keep it offline; mode 0600), public key {public}")
    print("ship the public key in appliance/release/trusted/ so that builds trust it")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    binary = Path(args.binary)
    if not binary.is_file():
        raise CliError(f"no binary {binary} (make binary builds build/dist/appliance)")
    version = args.version
    if not version:
        answer = subprocess.run([str(binary.resolve()), "--version"], capture_output=True, text=True, timeout=120)
        words = answer.stdout.split()
        if answer.returncode != 0 or len(words) != 2:
            raise CliError(f"{binary} --version did not answer `appliance X`: give --version")
        version = words[1]
    released = dt.datetime.now(dt.UTC)
    if args.released:
        try:
            released = dt.datetime.fromisoformat(args.released.replace("Z", "+00:00"))
        except ValueError:
            raise CliError(f"--released {args.released!r} is not an ISO-8601 time") from None
        if released.tzinfo is None:
            released = released.replace(tzinfo=dt.UTC)
    output = Path(args.output or f"appliance-{version}.tar")
    if output.is_dir():
        output = output / f"appliance-{version}.tar"
    try:
        key = signing.load_private(Path(args.private_key))
        bundle.build(binary, Path(args.manifest), version, released, key, output)
    except (signing.SignatureError, bundle.BundleError, OSError) as exc:
        raise CliError(str(exc)) from None
    print(f"{output}: version {version}, released {bundle.iso(released)}, signed by key "
          f"{signing.key_id(key.public_key())}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    trusted = signing.shipped_keys()
    for path in args.public_key or []:
        try:
            key = signing.load_public(Path(path))
        except signing.SignatureError as exc:
            raise CliError(str(exc)) from None
        trusted[signing.key_id(key)] = key
    staging = Path(tempfile.mkdtemp(prefix="appliance-verify-"))
    try:
        release = bundle.verify(Path(args.bundle), trusted, staging / "bundle")
    except bundle.BundleError as exc:
        raise CliError(f"{args.bundle}: refused: {exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"{args.bundle}: verified: version {release.version}, released {bundle.iso(release.released)}, "
          f"signed by key {release.key_id}")
    for name, digest in release.sha256.items():
        print(f"  {digest}  {name}")
    return 0


# The one-file binary reads its own file for every module it imports; once the upgrade renames the
# new binary over it, a later import would read the new file. So a binary upgrading itself runs the
# upgrade from a private copy of itself (this variable marks that copy) and only waits for it.
COPY_MARK = "APPLIANCE_UPGRADE_FROM_COPY"


def _run_from_a_copy(binary: Path) -> int:
    directory = Path(tempfile.mkdtemp(prefix="appliance-upgrader-"))
    try:
        copy = directory / "appliance"
        shutil.copyfile(binary, copy)
        copy.chmod(0o700)
        command = [str(copy), *sys.argv[1:], "--install-path", str(binary)]  # the last one given wins
        return subprocess.run(command, env={**os.environ, COPY_MARK: "1"}).returncode
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def cmd_upgrade(args: argparse.Namespace) -> int:
    if args.install_path:
        install_path = Path(args.install_path).resolve()
    elif getattr(sys, "frozen", False):  # the one-file binary upgrades itself
        install_path = Path(sys.executable).resolve()
    else:
        raise CliError("give --install-path: this is not the one-file binary, so there is nothing to replace")
    if getattr(sys, "frozen", False) and Path(sys.executable).resolve() == install_path and not os.environ.get(COPY_MARK):
        return _run_from_a_copy(install_path)
    data_dir = config.resolve_data_dir(args.data_dir)
    settings = config.load(data_dir)
    secret = passphrase(args, data_dir)
    options = Options(Path(args.bundle), install_path, args.service, args.force, args.timeout)
    upgrade = Upgrade(settings, lambda: open_runtime(config.load(data_dir), secret), options, print, secret)
    try:
        upgrade.run()
    except UpgradeError as exc:
        print(f"error: upgrade: {exc}", file=sys.stderr)
        return 1
    return 0


def register(sub: Subparsers[Any]) -> None:
    release = sub.add_parser("release", help="release bundles: signing keys, build, verify")
    actions = release.add_subparsers(dest="action", required=True)
    p = actions.add_parser("keygen", help="a new Ed25519 release signing key pair")
    p.add_argument("--private-key", required=True, help="where the private key goes (must not exist)")
    p.add_argument("--public-key", required=True, help="where the public key goes")
    p.set_defaults(func=cmd_keygen)
    p = actions.add_parser("build", help="a signed release bundle from a built binary")
    p.add_argument("--binary", default="build/dist/appliance")
    p.add_argument("--private-key", required=True, help="the release signing key (PEM)")
    p.add_argument("--output", help="bundle file or directory (default appliance-<version>.tar)")
    p.add_argument("--version", help="default: what the binary's --version reports")
    p.add_argument("--released", help="release date, ISO-8601 (default now)")
    p.add_argument("--manifest", default=str(MANIFEST), help="the model manifest to ship")
    p.set_defaults(func=cmd_build)
    p = actions.add_parser("verify", help="check a bundle's signature and checksums; changes nothing")
    p.add_argument("bundle")
    p.add_argument("--public-key", action="append", help="also trust this public key (repeatable)")
    p.set_defaults(func=cmd_verify)
    p = command(sub, "upgrade", cmd_upgrade, "install a signed release bundle, with rollback")
    p.add_argument("bundle")
    p.add_argument("--install-path", help="the installed binary to replace (default: this binary)")
    p.add_argument("--service", help="systemd unit to stop before and start after the swap")
    p.add_argument("--force", action="store_true", help="controlled channel: install a release younger than 14 days")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for /health (default 120)")
