"""Data protection: `backup now|list|verify`, `restore`, `keys rotate-master|rekey|rotate-backup`."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from appliance import config
from appliance.cli.common import CliError, Subparsers, command, group, open_once, passphrase, with_runtime
from appliance.runtime import Runtime, open_runtime
from appliance.storage import crypto


def _only(args: argparse.Namespace) -> str | None:
    if (args.workspace is None) != (args.env is None):
        raise CliError("--workspace and --env go together")
    return f"ws{args.workspace}-{args.env}" if args.workspace is not None else None


@with_runtime
def cmd_backup_now(runtime: Runtime, args: argparse.Namespace) -> int:
    from appliance.backup.shipping import ship
    from appliance.backup.snapshots import take_snapshot

    for t in runtime.backups.targets():
        ship(runtime.backups, t)
        snap = take_snapshot(runtime.backups, t, "on demand")
        print(f"{t.name}\t{snap.path}\t{snap.path.stat().st_size} bytes")
    runtime.admin_event("backup now")
    return 0


@with_runtime
def cmd_backup_list(runtime: Runtime, args: argparse.Namespace) -> int:
    from appliance.backup.verify import describe

    for entry in describe(runtime.backups):
        print(
            f"{entry['database']}: restorable from {entry['restorable_from'] or 'nothing yet'}; "
            f"{len(entry['snapshots'])} snapshots, {entry['segments']} log segments ({entry['log_bytes']} bytes)"
        )
        for snap in entry["snapshots"]:
            print(f"  snapshot {snap['taken']}  seq {snap['seq']}  schema {snap['schema']}  "
                  f"key gen {snap['key_gen']}  {snap['bytes']} bytes")
    return 0


@with_runtime
def cmd_backup_verify(runtime: Runtime, args: argparse.Namespace) -> int:
    from appliance.backup.verify import verify

    report = verify(runtime.backups)
    for line in report.lines:
        print(line)
    runtime.admin_event("backup verify", target="ok" if report.ok else "failed")
    return 0 if report.ok else 1


def cmd_restore(args: argparse.Namespace) -> int:
    from appliance.backup import restore as pitr
    from appliance.backup.format import iso, parse_time
    from appliance.backup.targets import RestoreError
    from appliance.runtime import backups_of

    try:
        until = parse_time(args.to)
    except ValueError:
        raise CliError(f"--to {args.to!r} is not an ISO-8601 time") from None
    only = _only(args)
    opener = open_once(args)
    try:
        if args.target:
            runtime = opener()
            try:
                results = pitr.restore(runtime.backups, until, Path(args.target).resolve(), only)
                runtime.admin_event(f"restore --to {iso(until)} --target", target=only)
            finally:
                runtime.close()
        else:
            results = pitr.restore_in_place(lambda: backups_of(opener), until, only)
            runtime = opener()
            try:
                runtime.admin_event(f"restore --to {iso(until)} in place", target=only)
            finally:
                runtime.close()
    except RestoreError as exc:
        raise CliError(str(exc)) from None
    for r in results:
        print(f"{r.database}: from {r.snapshot}, {r.transactions} transactions / {r.changes_applied} changes "
              f"replayed, {r.erased_rows} erased rows removed again, {r.seconds}s")
    print(f"restored to {iso(until)}" + (f" into {args.target}" if args.target else " in place"))
    return 0


def cmd_keys_rotate_master(args: argparse.Namespace) -> int:
    from appliance.storage import rotation

    data_dir = config.resolve_data_dir(args.data_dir)
    rotation.finish_master_rotation(data_dir)
    new_passphrase = None
    current = passphrase(args, data_dir)
    if crypto.is_sealed(data_dir):
        new_passphrase = sys.stdin.readline().rstrip("\n") if args.passphrase_stdin else getpass.getpass(
            "New master passphrase: "
        )
    runtime = open_runtime(config.load(data_dir), current)
    try:
        rotation.rotate_master(runtime.data_dir, runtime.keyring, new_passphrase)
        runtime.admin_event("keys rotate-master")
    finally:
        runtime.close()
    print("master key rotated; the keyring is re-wrapped" + ("" if new_passphrase else f" ({data_dir / crypto.MASTER_KEY_FILE})"))
    return 0


def cmd_keys_rekey(args: argparse.Namespace) -> int:
    from appliance.backup.targets import server_running
    from appliance.storage import rotation

    data_dir = config.resolve_data_dir(args.data_dir)
    if server_running(data_dir):
        result = rotation.request(data_dir, "rekey", db=args.db)
        if not result.get("ok"):
            raise CliError(f"rekey failed in the server: {result.get('error')}")
        print(f"{args.db} re-encrypted under a new key by the running server in {result['seconds']}s")
        return 0
    runtime = open_once(args)()
    try:
        seconds = runtime.rekey(args.db)
        runtime.admin_event("keys rekey", target=args.db)
    finally:
        runtime.close()
    print(f"{args.db} re-encrypted under a new key in {seconds}s")
    return 0


@with_runtime
def cmd_keys_rotate_backup(runtime: Runtime, args: argparse.Namespace) -> int:
    from appliance.backup.keys import rotate_backup_keys

    gen = rotate_backup_keys(runtime.keyring)
    runtime.admin_event("keys rotate-backup", target=f"gen {gen}")
    print(f"backup and log keys: generation {gen} for new snapshots and segments; older ones stay "
          "readable until retention removes them")
    return 0


def register(sub: Subparsers[Any]) -> None:
    backup = group(sub, "backup", "point-in-time recovery backups")
    command(backup, "now", cmd_backup_now, "ship the change log and take a snapshot of every database")
    command(backup, "list", cmd_backup_list, "list snapshots and log segments per database")
    command(backup, "verify", cmd_backup_verify, "prove every snapshot + log chain decrypts and restores")
    p = command(sub, "restore", cmd_restore, "restore to a point in time (in place: server stopped)")
    p.add_argument("--to", required=True, help="ISO-8601 time, e.g. 2026-11-29T10:15:00Z")
    p.add_argument("--target", help="restore into this new data directory instead of in place")
    p.add_argument("--workspace", type=int)
    p.add_argument("--env", choices=["test", "production"])
    keys = group(sub, "keys", "key rotation")
    command(keys, "rotate-master", cmd_keys_rotate_master, "re-wrap the keyring under a new master key")
    p = command(keys, "rekey", cmd_keys_rekey, "re-encrypt one database under a new key (online)")
    p.add_argument("--db", required=True, help="control, ws<id>-<env>, keystore or audit")
    command(keys, "rotate-backup", cmd_keys_rotate_backup, "new backup/log keys for new snapshots and segments")
