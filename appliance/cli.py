"""The `appliance` command line. Command names are a contract (docs/cli.md); keep them stable."""

from __future__ import annotations

import argparse
import getpass
import os
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

from appliance import __version__, config
from appliance.runtime import METRICS_TOKEN_SETTING, Runtime, initialise, open_runtime
from appliance.storage import crypto
from appliance.storage.database import StorageError
from appliance.workspaces import service


class CliError(Exception):
    pass


def _passphrase(args: argparse.Namespace, data_dir: Path, creating: bool = False) -> str | None:
    wants = getattr(args, "passphrase_stdin", False) or (not creating and crypto.is_sealed(data_dir))
    if not wants:
        return None
    if getattr(args, "passphrase_stdin", False):
        return sys.stdin.readline().rstrip("\n")
    if os.environ.get("APPLIANCE_PASSPHRASE"):
        return os.environ["APPLIANCE_PASSPHRASE"]
    if sys.stdin.isatty():
        return getpass.getpass("Master passphrase: ")
    raise CliError("this data directory is sealed: pipe the passphrase with --passphrase-stdin")


def _open(args: argparse.Namespace) -> Runtime:
    data_dir = config.resolve_data_dir(args.data_dir)
    return open_runtime(config.load(data_dir), _passphrase(args, data_dir))


def new_metrics_token(runtime: Runtime) -> str:
    token = "mt_" + secrets.token_hex(24)
    digest = crypto.keyed_hash(runtime.pepper, token)
    runtime.control.write(
        lambda db: db.execute(
            "INSERT OR REPLACE INTO settings (k, v) VALUES (?, ?)", [METRICS_TOKEN_SETTING, digest]
        )
    )
    return token


# -- commands ------------------------------------------------------------------------------------
def cmd_init(args: argparse.Namespace) -> int:
    data_dir = config.resolve_data_dir(args.data_dir)
    runtime, fresh = initialise(data_dir, _passphrase(args, data_dir, creating=True))
    try:
        from appliance.server.tls import make_self_signed

        make_self_signed(data_dir)
        if not fresh and service.list_workspaces(runtime.control):
            ids = ", ".join(str(w["id"]) for w in service.list_workspaces(runtime.control))
            print(f"Data directory {data_dir} is already initialised (workspaces: {ids}).")
            print(
                "Keys are shown only once; make a new one with: appliance key create --workspace ID --mode test"
            )
            return 0
        workspace_id = runtime.create_workspace(args.name)
        _, header = service.create_api_key(runtime.control, runtime.pepper, workspace_id, "test")
        token = new_metrics_token(runtime)
        runtime.admin_event("init", target=f"workspace:{workspace_id}", workspace_id=workspace_id)
        print(f"Initialised {data_dir}")
        print(f"Workspace id: {workspace_id}")
        print(f"Test-mode Authorization value (shown once): {header}")
        print(f"Metrics token (shown once): {token}")
        return 0
    finally:
        runtime.close()


def cmd_serve(args: argparse.Namespace) -> int:
    from appliance.server import logs
    from appliance.server.serve import serve
    from appliance.server.tls import make_self_signed

    logs.setup()  # JSON from the first line: opening the data directory can already log (a full disk)
    runtime = _open(args)
    settings = runtime.settings
    tls: tuple[Path, Path] | None = None
    if args.tls_self_signed:
        tls = make_self_signed(runtime.data_dir)
    elif args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            runtime.close()
            raise CliError("--tls-cert and --tls-key go together")
        tls = (Path(args.tls_cert), Path(args.tls_key))
    elif settings.server.tls_cert:
        tls = (Path(settings.server.tls_cert), Path(settings.server.tls_key))
    host = args.host or settings.server.host
    port = args.port if args.port is not None else settings.server.port
    settings.server.host, settings.server.port = host, port
    if tls:  # whatever named the certificate, the links this server mints say https
        settings.server.tls_cert, settings.server.tls_key = str(tls[0]), str(tls[1])
    if args.public_url:
        settings.server.public_url = args.public_url
    serve(runtime, host, port, tls)
    return 0


def _with_runtime(fn: Callable[[Runtime, argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        runtime = _open(args)
        try:
            return fn(runtime, args)
        finally:
            runtime.close()

    return run


@_with_runtime
def cmd_workspace_create(runtime: Runtime, args: argparse.Namespace) -> int:
    workspace_id = runtime.create_workspace(args.name)
    runtime.admin_event("workspace create", target=f"workspace:{workspace_id}", workspace_id=workspace_id)
    print(workspace_id)
    return 0


@_with_runtime
def cmd_workspace_list(runtime: Runtime, args: argparse.Namespace) -> int:
    for w in service.list_workspaces(runtime.control):
        off = [k for k, v in w["entitlements"].items() if not v]
        print(f"{w['id']}\t{w['name']}\t{w['created']}\tentitlements off: {', '.join(off) or 'none'}")
    return 0


@_with_runtime
def cmd_workspace_entitlement(runtime: Runtime, args: argparse.Namespace) -> int:
    service.set_entitlement(runtime.control, args.workspace, args.entitlement, args.state == "on")
    runtime.admin_event(f"entitlement {args.entitlement} {args.state}", workspace_id=args.workspace)
    print(f"workspace {args.workspace}: {args.entitlement} {args.state}")
    return 0


@_with_runtime
def cmd_key_create(runtime: Runtime, args: argparse.Namespace) -> int:
    key_id, header = service.create_api_key(runtime.control, runtime.pepper, args.workspace, args.mode)
    runtime.admin_event("key create", target=key_id, workspace_id=args.workspace)
    print(header)
    print(f"(key id {key_id}; the value above is shown only once)", file=sys.stderr)
    return 0


@_with_runtime
def cmd_secret_set(runtime: Runtime, args: argparse.Namespace) -> int:
    """Read the value from stdin (never argv: it would show in `ps` and shell history)."""
    from appliance.security import secrets as operator_secrets

    value = sys.stdin.readline().rstrip("\r\n") if not sys.stdin.isatty() else getpass.getpass("Value: ")
    try:
        operator_secrets.put(runtime.keyring, args.name, value)
    except operator_secrets.SecretError as exc:
        raise CliError(str(exc)) from None
    runtime.admin_event("secret set", target=args.name)
    print(f"{args.name} stored in the encrypted keyring; restart the server to use it", file=sys.stderr)
    return 0


@_with_runtime
def cmd_secret_list(runtime: Runtime, args: argparse.Namespace) -> int:
    from appliance.security import secrets as operator_secrets

    for name in operator_secrets.names(runtime.keyring):
        print(name)
    return 0


@_with_runtime
def cmd_secret_remove(runtime: Runtime, args: argparse.Namespace) -> int:
    from appliance.security import secrets as operator_secrets

    try:
        removed = operator_secrets.remove(runtime.keyring, args.name)
    except operator_secrets.SecretError as exc:
        raise CliError(str(exc)) from None
    runtime.admin_event("secret remove", target=args.name)
    print(f"{args.name} {'removed' if removed else 'was not set'}", file=sys.stderr)
    return 0


@_with_runtime
def cmd_log_id(runtime: Runtime, args: argparse.Namespace) -> int:
    """The pseudonym logs carry for a learner or client identifier (appliance.security.pseudonym)."""
    from appliance.security.pseudonym import log_id, log_key

    runtime.admin_event("log-id")  # the identifier itself stays out of the audit log
    key = log_key(runtime.pepper)
    for identifier in args.identifier:
        print(f"{log_id(key, identifier)}\t{identifier}" if len(args.identifier) > 1 else log_id(key, identifier))
    return 0


@_with_runtime
def cmd_key_list(runtime: Runtime, args: argparse.Namespace) -> int:
    for k in service.list_api_keys(runtime.control, args.workspace):
        state = f"revoked {k['revoked']}" if k["revoked"] else "active"
        print(
            f"{k['key_id']}\tworkspace {k['workspace_id']}\t{k['mode']}\t...{k['hint']}\t{k['created']}\t{state}"
        )
    return 0


@_with_runtime
def cmd_key_revoke(runtime: Runtime, args: argparse.Namespace) -> int:
    service.revoke_api_key(runtime.control, args.key_id)
    runtime.admin_event("key revoke", target=args.key_id)
    print(f"revoked {args.key_id}")
    return 0


@_with_runtime
def cmd_metrics_token(runtime: Runtime, args: argparse.Namespace) -> int:
    token = new_metrics_token(runtime)
    runtime.admin_event("metrics token")
    print(token)
    return 0


@_with_runtime
def cmd_audit_verify(runtime: Runtime, args: argparse.Namespace) -> int:
    result = runtime.audit.verify()
    if result.ok:
        print(f"audit log OK: {result.entries} entries, chain intact")
        return 0
    print(f"audit log FAILED verification ({result.entries} entries):")
    for problem in result.problems:
        print(f"  - {problem}")
    return 1


@_with_runtime
def cmd_audit_export(runtime: Runtime, args: argparse.Namespace) -> int:
    if args.output:
        with open(args.output, "w") as out:
            n = runtime.audit.export(out, args.since)
        print(f"exported {n} entries to {args.output}", file=sys.stderr)
    else:
        runtime.audit.export(sys.stdout, args.since)
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from sqlcipher3 import dbapi2 as sqlcipher

    data_dir = config.resolve_data_dir(args.data_dir)
    checks: list[tuple[str, bool, str]] = []
    checks.append(("sqlcipher", True, f"SQLite {sqlcipher.sqlite_version}"))
    try:
        settings = config.load(data_dir)
        checks.append(("config", True, str(data_dir / config.CONFIG_FILE)))
    except config.ConfigError as exc:
        checks.append(("config", False, str(exc)))
        settings = None
    mode = data_dir.stat().st_mode & 0o777 if data_dir.exists() else 0
    checks.append(("data dir permissions", mode & 0o077 == 0, f"{mode:o}"))
    if settings is not None:
        try:
            runtime = open_runtime(settings, _passphrase(args, data_dir))
        except (crypto.KeyProblem, StorageError, CliError) as exc:
            checks.append(("keys and databases", False, str(exc)))
        else:
            try:
                checks.append(
                    ("master key, keyring, databases", True, f"{len(runtime.keyring.names())} keys")
                )
                for w in service.list_workspaces(runtime.control):
                    for env in service.ENVIRONMENTS:
                        runtime.environment(w["id"], env)
                checks.append(("workspace databases", True, "all open with their keys, all encrypted"))
                result = runtime.audit.verify()
                checks.append(
                    (
                        "audit chain",
                        result.ok,
                        f"{result.entries} entries" if result.ok else result.problems[0],
                    )
                )
            finally:
                runtime.close()
    width = max(len(c[0]) for c in checks)
    for name, ok, detail in checks:
        print(f"{'ok  ' if ok else 'FAIL'} {name.ljust(width)}  {detail}")
    return 0 if all(ok for _, ok, _ in checks) else 1


# -- data protection: backup, restore, key rotation (issue 7) --------------------------------------
def _open_once(args: argparse.Namespace) -> Callable[[], Runtime]:
    """Open the runtime as often as needed, asking for a sealed directory's passphrase only once."""
    data_dir = config.resolve_data_dir(args.data_dir)
    passphrase = _passphrase(args, data_dir)
    return lambda: open_runtime(config.load(data_dir), passphrase)


def _only(args: argparse.Namespace) -> str | None:
    if (args.workspace is None) != (args.env is None):
        raise CliError("--workspace and --env go together")
    return f"ws{args.workspace}-{args.env}" if args.workspace is not None else None


@_with_runtime
def cmd_backup_now(runtime: Runtime, args: argparse.Namespace) -> int:
    from appliance.storage import pitr

    for t in pitr.targets(runtime):
        pitr.ship(runtime, t)
        snap = pitr.take_snapshot(runtime, t, "on demand")
        print(f"{t.name}\t{snap.path}\t{snap.path.stat().st_size} bytes")
    runtime.admin_event("backup now")
    return 0


@_with_runtime
def cmd_backup_list(runtime: Runtime, args: argparse.Namespace) -> int:
    from appliance.storage import pitr

    for entry in pitr.describe(runtime):
        print(
            f"{entry['database']}: restorable from {entry['restorable_from'] or 'nothing yet'}; "
            f"{len(entry['snapshots'])} snapshots, {entry['segments']} log segments ({entry['log_bytes']} bytes)"
        )
        for snap in entry["snapshots"]:
            print(f"  snapshot {snap['taken']}  seq {snap['seq']}  schema {snap['schema']}  "
                  f"key gen {snap['key_gen']}  {snap['bytes']} bytes")
    return 0


@_with_runtime
def cmd_backup_verify(runtime: Runtime, args: argparse.Namespace) -> int:
    from appliance.storage import pitr

    report = pitr.verify(runtime)
    for line in report.lines:
        print(line)
    runtime.admin_event("backup verify", target="ok" if report.ok else "failed")
    return 0 if report.ok else 1


def cmd_restore(args: argparse.Namespace) -> int:
    from appliance.storage import pitr

    try:
        until = pitr.parse_time(args.to)
    except ValueError:
        raise CliError(f"--to {args.to!r} is not an ISO-8601 time") from None
    only = _only(args)
    opener = _open_once(args)
    try:
        if args.target:
            runtime = opener()
            try:
                results = pitr.restore(runtime, until, Path(args.target).resolve(), only)
                runtime.admin_event(f"restore --to {pitr.iso(until)} --target", target=only)
            finally:
                runtime.close()
        else:
            results = pitr.restore_in_place(opener, until, only)
            runtime = opener()
            try:
                runtime.admin_event(f"restore --to {pitr.iso(until)} in place", target=only)
            finally:
                runtime.close()
    except pitr.RestoreError as exc:
        raise CliError(str(exc)) from None
    for r in results:
        print(f"{r.database}: from {r.snapshot}, {r.transactions} transactions / {r.changes_applied} changes "
              f"replayed, {r.erased_rows} erased rows removed again, {r.seconds}s")
    print(f"restored to {pitr.iso(until)}" + (f" into {args.target}" if args.target else " in place"))
    return 0


def cmd_keys_rotate_master(args: argparse.Namespace) -> int:
    from appliance.storage import rotation

    data_dir = config.resolve_data_dir(args.data_dir)
    rotation.finish_master_rotation(data_dir)
    new_passphrase = None
    passphrase = _passphrase(args, data_dir)
    if crypto.is_sealed(data_dir):
        new_passphrase = sys.stdin.readline().rstrip("\n") if args.passphrase_stdin else getpass.getpass(
            "New master passphrase: "
        )
    runtime = open_runtime(config.load(data_dir), passphrase)
    try:
        rotation.rotate_master(runtime, new_passphrase)
        runtime.admin_event("keys rotate-master")
    finally:
        runtime.close()
    print("master key rotated; the keyring is re-wrapped" + ("" if new_passphrase else f" ({data_dir / crypto.MASTER_KEY_FILE})"))
    return 0


def cmd_keys_rekey(args: argparse.Namespace) -> int:
    from appliance.storage import pitr, rotation

    data_dir = config.resolve_data_dir(args.data_dir)
    if pitr.server_running(data_dir):
        result = rotation.request(data_dir, "rekey", db=args.db)
        if not result.get("ok"):
            raise CliError(f"rekey failed in the server: {result.get('error')}")
        print(f"{args.db} re-encrypted under a new key by the running server in {result['seconds']}s")
        return 0
    runtime = _open_once(args)()
    try:
        seconds = rotation.rekey(runtime, args.db)
        runtime.admin_event("keys rekey", target=args.db)
    finally:
        runtime.close()
    print(f"{args.db} re-encrypted under a new key in {seconds}s")
    return 0


@_with_runtime
def cmd_keys_rotate_backup(runtime: Runtime, args: argparse.Namespace) -> int:
    from appliance.storage import pitr

    gen = pitr.rotate_backup_keys(runtime.keyring)
    runtime.admin_event("keys rotate-backup", target=f"gen {gen}")
    print(f"backup and log keys: generation {gen} for new snapshots and segments; older ones stay "
          "readable until retention removes them")
    return 0


# -- end of data protection commands -------------------------------------------------------------


# -- embeds (issue 5) --
@_with_runtime
def cmd_workspace_origins(runtime: Runtime, args: argparse.Namespace) -> int:
    from appliance.embeds import origins

    try:
        result = origins.set_origins(
            runtime.control, args.workspace, args.env, args.add or [], args.remove or []
        )
    except origins.OriginError as exc:
        raise CliError(str(exc)) from None
    if args.add or args.remove:
        runtime.admin_event(
            f"origins {args.env}", target=f"workspace:{args.workspace}", workspace_id=args.workspace
        )
    print(f"workspace {args.workspace} {args.env}: " + (" ".join(result) if result else "(none configured)"))
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    from appliance.embeds.sandbox import Sandbox

    runtime = _open(args)
    try:
        _, header = service.create_api_key(runtime.control, runtime.pepper, args.workspace, "test")
        runtime.admin_event(
            "sandbox key create", target=f"workspace:{args.workspace}", workspace_id=args.workspace
        )
        appliance_url = args.appliance_url or runtime.settings.base_url
    finally:
        runtime.close()
    sandbox = Sandbox(appliance_url, header, host=args.host, port=args.port)
    try:
        sandbox.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.close()
    return 0


# -- parser --------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="appliance", description="Offline Coassemble Embed backend")
    parser.add_argument("--version", action="version", version=f"appliance {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(
        subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
        name: str,
        fn: Callable[..., int],
        help_text: str,
    ) -> argparse.ArgumentParser:
        p = subparsers.add_parser(name, help=help_text)
        p.add_argument("--data-dir", help="data directory (or APPLIANCE_DATA_DIR)")
        p.add_argument(
            "--passphrase-stdin", action="store_true", help="read the master passphrase from stdin"
        )
        p.set_defaults(func=fn)
        return p

    p = command(sub, "init", cmd_init, "create the master key, keyring, databases and a first workspace")
    p.add_argument("--name", default="Default workspace")
    p = command(sub, "serve", cmd_serve, "serve the API, embeds and docs")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--tls-self-signed", action="store_true")
    p.add_argument(
        "--public-url", "--embed-base", dest="public_url",
        help="the base URL browsers reach (signed embed URLs, SCORM packages); overrides server.public_url",
    )
    command(sub, "doctor", cmd_doctor, "check keys, databases, permissions and the audit chain")

    ws = sub.add_parser("workspace", help="workspaces").add_subparsers(dest="action", required=True)
    command(ws, "create", cmd_workspace_create, "create a workspace").add_argument("--name", required=True)
    command(ws, "list", cmd_workspace_list, "list workspaces")
    p = command(ws, "entitlement", cmd_workspace_entitlement, "switch an entitlement on or off")
    p.add_argument("--workspace", type=int, required=True)
    p.add_argument("entitlement", choices=service.ENTITLEMENTS)
    p.add_argument("state", choices=["on", "off"])
    p = command(
        ws, "origins", cmd_workspace_origins, "list, add or remove host origins allowed to frame embeds"
    )
    p.add_argument("--workspace", type=int, required=True)
    p.add_argument("--env", choices=["test", "production"], required=True)
    p.add_argument("--add", action="append", metavar="ORIGIN")
    p.add_argument("--remove", action="append", metavar="ORIGIN")
    p = command(sub, "sandbox", cmd_sandbox, "serve a partner host page that embeds this appliance")
    p.add_argument("--workspace", type=int, default=1)
    p.add_argument("--host", default="localhost", help="the sandbox's own host name (another origin)")
    p.add_argument("--port", type=int, default=8081)
    p.add_argument("--appliance-url", help="where the appliance answers (default: its public URL)")

    p = command(sub, "log-id", cmd_log_id, "print the pseudonym that logs carry for a user or client identifier")
    p.add_argument("identifier", nargs="+")
    secret = sub.add_parser("secret", help="operator secrets in the encrypted keyring").add_subparsers(
        dest="action", required=True
    )
    p = command(secret, "set", cmd_secret_set, "store a secret (value on stdin), e.g. remote-api-key:<engine name>")
    p.add_argument("name")
    command(secret, "list", cmd_secret_list, "names of the stored secrets (never values)")
    p = command(secret, "remove", cmd_secret_remove, "remove a stored secret")
    p.add_argument("name")
    key = sub.add_parser("key", help="API keys").add_subparsers(dest="action", required=True)
    p = command(key, "create", cmd_key_create, "create an API key (printed once)")
    p.add_argument("--workspace", type=int, required=True)
    p.add_argument("--mode", choices=["test", "production"], required=True)
    p = command(key, "list", cmd_key_list, "list API keys (never their values)")
    p.add_argument("--workspace", type=int)
    command(key, "revoke", cmd_key_revoke, "revoke an API key").add_argument("key_id")

    audit = sub.add_parser("audit", help="the audit log").add_subparsers(dest="action", required=True)
    command(audit, "verify", cmd_audit_verify, "check the hash chain")
    p = command(audit, "export", cmd_audit_export, "write entries as JSON lines")
    p.add_argument("--output")
    p.add_argument("--since", type=int, default=0, help="only entries after this sequence number")

    from appliance.ai.models import register_cli as register_model_cli

    register_model_cli(sub)  # model list | verify | add FILE | install NAME (docs/ai.md)

    metrics = sub.add_parser("metrics", help="the /metrics endpoint").add_subparsers(
        dest="action", required=True
    )
    command(
        metrics, "token", cmd_metrics_token, "issue a new metrics bearer token (the old one stops working)"
    )
    # -- data protection (issue 7) --
    backup = sub.add_parser("backup", help="point-in-time recovery backups").add_subparsers(
        dest="action", required=True
    )
    command(backup, "now", cmd_backup_now, "ship the change log and take a snapshot of every database")
    command(backup, "list", cmd_backup_list, "list snapshots and log segments per database")
    command(backup, "verify", cmd_backup_verify, "prove every snapshot + log chain decrypts and restores")
    p = command(sub, "restore", cmd_restore, "restore to a point in time (in place: server stopped)")
    p.add_argument("--to", required=True, help="ISO-8601 time, e.g. 2026-11-29T10:15:00Z")
    p.add_argument("--target", help="restore into this new data directory instead of in place")
    p.add_argument("--workspace", type=int)
    p.add_argument("--env", choices=["test", "production"])
    keys = sub.add_parser("keys", help="key rotation").add_subparsers(dest="action", required=True)
    command(keys, "rotate-master", cmd_keys_rotate_master, "re-wrap the keyring under a new master key")
    p = command(keys, "rekey", cmd_keys_rekey, "re-encrypt one database under a new key (online)")
    p.add_argument("--db", required=True, help="control, ws<id>-<env>, keystore or audit")
    command(keys, "rotate-backup", cmd_keys_rotate_backup, "new backup/log keys for new snapshots and segments")
    # -- end of data protection --
    return parser


def main(argv: list[str] | None = None) -> int:
    os.umask(0o077)  # every file the appliance writes is for its own user only
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
        return result
    except (
        CliError,
        config.ConfigError,
        crypto.KeyProblem,
        StorageError,
        service.NotFound,
        ValueError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
