"""Setting up and running the server: `init`, `serve`, `doctor`, `sandbox`, `metrics token`."""

from __future__ import annotations

import argparse
import secrets
from pathlib import Path
from typing import Any

from appliance import config
from appliance.cli.common import (
    CliError,
    Subparsers,
    command,
    group,
    open_from_args,
    passphrase,
    with_runtime,
)
from appliance.runtime import METRICS_TOKEN_SETTING, Runtime, initialise, open_runtime
from appliance.storage import crypto
from appliance.storage.database import StorageError, share_writers
from appliance.workspaces import service


def new_metrics_token(runtime: Runtime) -> str:
    token = "mt_" + secrets.token_hex(24)
    digest = crypto.keyed_hash(runtime.pepper, token)
    runtime.control.write(
        lambda db: db.execute(
            "INSERT OR REPLACE INTO settings (k, v) VALUES (?, ?)", [METRICS_TOKEN_SETTING, digest]
        )
    )
    return token


def cmd_init(args: argparse.Namespace) -> int:
    data_dir = config.resolve_data_dir(args.data_dir)
    runtime, fresh = initialise(data_dir, passphrase(args, data_dir, creating=True))
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
        from appliance.cli.admin import print_setup_link

        print_setup_link(runtime)
        return 0
    finally:
        runtime.close()


def cmd_serve(args: argparse.Namespace) -> int:
    from appliance import logs
    from appliance.server import workers
    from appliance.server.serve import serve
    from appliance.server.tls import make_self_signed

    logs.setup()  # JSON from the first line: opening the data directory can already log (a full disk)
    data_dir = config.resolve_data_dir(args.data_dir)
    secret = passphrase(args, data_dir)
    inherited = workers.worker_socket()
    count = workers.worker_count(args.workers)
    if inherited is not None or count > 1:
        share_writers()  # before any database opens: writers of several processes queue on a flock
    runtime = open_runtime(config.load(data_dir), secret)
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
    if inherited is not None:  # one of `serve --workers N`: serve the supervisor's socket
        serve(runtime, host, port, tls, sock=inherited[0], recover_jobs=inherited[1], worker=inherited[2])
    elif count > 1:
        argv = ["serve", "--data-dir", str(data_dir), "--host", host, "--port", str(port)]
        if tls:
            argv += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
        if args.public_url:
            argv += ["--public-url", args.public_url]
        workers.supervise(runtime, argv, host, port, count, secret, tls is not None)
    else:
        serve(runtime, host, port, tls)
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
            runtime = open_runtime(settings, passphrase(args, data_dir))
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


def cmd_sandbox(args: argparse.Namespace) -> int:
    from appliance.embeds.sandbox import Sandbox

    runtime = open_from_args(args)
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


@with_runtime
def cmd_metrics_token(runtime: Runtime, args: argparse.Namespace) -> int:
    token = new_metrics_token(runtime)
    runtime.admin_event("metrics token")
    print(token)
    return 0


def register(sub: Subparsers[Any]) -> None:
    p = command(sub, "init", cmd_init, "create the master key, keyring, databases and a first workspace")
    p.add_argument("--name", default="Default workspace")
    p = command(sub, "serve", cmd_serve, "serve the API, embeds and docs")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--tls-self-signed", action="store_true")
    p.add_argument(
        "--workers", type=int, default=None,
        help="server processes sharing the port and the data directory; default (or 0): one per core this "
        "process may run on; 1: one process (docs/performance.md)",
    )
    p.add_argument(
        "--public-url", "--embed-base", dest="public_url",
        help="the base URL browsers reach (signed embed URLs, SCORM packages); overrides server.public_url",
    )
    command(sub, "doctor", cmd_doctor, "check keys, databases, permissions and the audit chain")


def register_sandbox(sub: Subparsers[Any]) -> None:
    p = command(sub, "sandbox", cmd_sandbox, "serve a partner host page that embeds this appliance")
    p.add_argument("--workspace", type=int, default=1)
    p.add_argument("--host", default="localhost", help="the sandbox's own host name (another origin)")
    p.add_argument("--port", type=int, default=8081)
    p.add_argument("--appliance-url", help="where the appliance answers (default: its public URL)")


def register_metrics(sub: Subparsers[Any]) -> None:
    metrics = group(sub, "metrics", "the /metrics endpoint")
    command(
        metrics, "token", cmd_metrics_token, "issue a new metrics bearer token (the old one stops working)"
    )
