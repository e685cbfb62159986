"""The `appliance` command line. Command names are a contract (docs/cli.md); keep them stable.

One module per command group; each adds its commands to the parser built here:

- `serve`: init, serve, doctor, sandbox, metrics token
- `workspaces`: workspace create|list|entitlement|origins, key create|list|revoke
- `secret`: secret set|list|remove, log-id, audit verify|export
- `model`: model list|verify|add|install
- `backup`: backup now|list|verify, restore, keys rotate-master|rekey|rotate-backup
- `release`: release keygen|build|verify, upgrade
- `admin`: admin create|list|reset-password|remove|setup-link (the web console's administrators)
- `lti`: lti add|list|remove|jwks|rotate-key (LTI 1.3 platforms and the tool's keys)
- `lrs`: lrs add|list|remove|log|test (xAPI statements' learning record stores)
"""

from __future__ import annotations

import argparse
import os
import sys

from appliance import __version__, config
from appliance.cli import admin, backup, lrs, lti, model, release, secret, serve, workspaces
from appliance.cli.common import CliError
from appliance.storage import crypto
from appliance.storage.database import StorageError
from appliance.workspaces import service

__all__ = ["CliError", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="appliance", description="Offline Coassemble Embed backend")
    parser.add_argument("--version", action="version", version=f"appliance {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve.register(sub)
    workspaces.register_workspace(sub)
    serve.register_sandbox(sub)
    secret.register(sub)
    workspaces.register_key(sub)
    secret.register_audit(sub)
    model.register(sub)
    serve.register_metrics(sub)
    backup.register(sub)
    release.register(sub)
    admin.register(sub)
    lrs.register(sub)
    lti.register(sub)
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
